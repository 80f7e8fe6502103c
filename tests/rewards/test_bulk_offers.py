"""Bulk awards and campaign offers: a member with a running multiplier offer goes through the
one-by-one engine (budgets are booked award by award); the others stay on the bulk path."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.models import OfferAward, OfferKind
from rewards.services import EventInput
from rewards.services.bulk import EventAward, award_events
from tests.campaigns.factories import CampaignFactory, add_send
from tests.rewards.helpers import assert_consistent, balance

from .factories import EarningRuleFactory, MemberFactory


@pytest.mark.django_db
def test_offer_members_get_their_multiplier_and_budget_booked_in_a_bulk_award():
    EarningRuleFactory(points_per_unit=Decimal("1"))
    start = timezone.now() - timedelta(days=1)
    campaign = CampaignFactory(
        offer_kind=OfferKind.MULTIPLIER,
        offer_title="Double points",
        multiplier=Decimal("2"),
        control_share=Decimal("0"),
        starts_at=start,
        ends_at=timezone.now() + timedelta(days=1),
        points_budget=70,
    )
    campaign.status = "running"
    campaign.save()
    offered, plain = MemberFactory(), MemberFactory()
    add_send(campaign, offered, at=start)

    def buy(member, key):
        event = EventInput("purchase", timezone.now(), Decimal("50"), "", "", "", key)
        return EventAward(member, event, key)

    awards = award_events(
        items=[buy(offered, "o1"), buy(offered, "o2"), buy(plain, "p1"), buy(plain, "p2")]
    )

    assert [a.points for a in awards] == [100, 70, 50, 50]  # the budget of 70 runs out
    assert sorted(OfferAward.objects.values_list("points", flat=True)) == [20, 50]
    assert (balance(offered), balance(plain)) == (170, 100)
    assert_consistent(offered)
    assert_consistent(plain)
