"""Personalised messages: member fields, points, tier, next-tier distance and expiring points,
rendered by Django's template language on a context of plain values only."""

from datetime import timedelta

import pytest
from django.template import TemplateSyntaxError
from django.utils import timezone

from campaigns.messages import check_template, render_for_member, render_template
from rewards.selectors import expiring_points
from rewards.services import award_points
from tests.campaigns.factories import CampaignFactory
from tests.rewards.factories import TierFactory

pytestmark = pytest.mark.django_db


def test_message_has_points_tier_distance_to_next_tier_and_expiring_points(consenting, program):
    program.expiry_policy = "rolling_months"
    program.expiry_months = 1
    program.save()
    TierFactory(name="Bronze", rank=1, points_threshold=0)
    TierFactory(name="Silver", rank=2, points_threshold=1000)
    member = consenting(1, first_name="Kim")[0]
    award_points(
        member=member,
        points=150,
        reason="Welcome",
        idempotency_key="w",
        occurred_at=timezone.now() - timedelta(days=10),
    )
    campaign = CampaignFactory(
        subject_template="{{ first_name }}: {{ points }} {{ points_name }}",
        body_template=(
            "{{ tier }} member, {{ points_to_next_tier }} to {{ next_tier }}; "
            "{{ expiring_points }} expire on {{ expiring_on|date:'Y-m-d' }}."
        ),
    )

    rendered = render_for_member(campaign, member)

    assert rendered.subject == "Kim: 150 points"
    [(last_day, points)] = expiring_points(member, as_of=timezone.now(), days=30)
    assert points == 150
    assert rendered.body == f"Bronze member, 850 to Silver; 150 expire on {last_day:%Y-%m-%d}."
    assert "/unsubscribe/" in rendered.text


@pytest.fixture
def program(db):
    from rewards.selectors import program_settings

    return program_settings()


def test_templates_see_plain_values_only(consenting):
    member = consenting(1)[0]
    context = {"first_name": "Kim"}
    assert render_template("{{ member.user.password }}{{ settings.SECRET_KEY }}", context) == ""
    campaign = CampaignFactory(body_template="{{ member.email }}{{ first_name }}")
    assert render_for_member(campaign, member).body == member.first_name


@pytest.mark.parametrize(
    "source",
    [
        "{% load static %}",
        "{% include 'base.html' %}",
        "{% extends 'base.html' %}",
        "{% debug %}",
        "{% url 'portal:home' %}",
        "{% if points %}unclosed",
        "{{ points|no_such_filter }}",
    ],
)
def test_unsafe_or_broken_templates_are_refused(source):
    with pytest.raises(TemplateSyntaxError):
        check_template(source)
