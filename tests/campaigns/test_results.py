"""Results: conversion and revenue per member in treatment and control, the uplift with its
95% interval (checked by hand against Newcombe 1998), points cost, incremental revenue, ROI."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns import selectors
from campaigns.models import Campaign, Group, SendStatus
from campaigns.stats import newcombe_interval, uplift, wald_interval, wilson_interval
from journeys.services import ingest_event
from rewards.selectors import program_settings
from tests.campaigns.factories import CampaignFactory, add_send


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10.
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
        ((6, 7, 2, 7), (0.0582, 0.8062)),
        ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ],
)
def test_newcombe_interval_matches_the_published_values(counts, expected):
    low, high = newcombe_interval(*counts)
    assert (round(low, 4), round(high, 4)) == expected


def test_wilson_and_wald_by_hand():
    # 56/70, z² = 3.8415: centre (0.8 + z²/140) / (1 + z²/70) = 0.78439,
    # half-width z·sqrt(0.8·0.2/70 + z²/19600) / (1 + z²/70) = 0.09256.
    low, high = wilson_interval(56, 70)
    assert (round(low, 4), round(high, 4)) == (0.6918, 0.8770)
    # Wald: 0.2 ± 1.96 × sqrt(0.8×0.2/70 + 0.6×0.4/80) = 0.2 ± 0.1425
    low, high = wald_interval(56, 70, 48, 80)
    assert (round(low, 4), round(high, 4)) == (0.0575, 0.3425)


def test_uplift_without_a_control_group_has_no_interval():
    result = uplift(5, 10, 0, 0)
    assert result.treatment_rate == 0.5
    assert result.difference is None and result.low is None
    assert not result.significant


@pytest.mark.django_db
def test_campaign_results_on_a_hand_checked_set(consenting):
    program = program_settings()
    program.cost_per_point = Decimal("0.0100")
    program.save()
    members = consenting(20)
    assigned = timezone.now() - timedelta(days=20)
    campaign = CampaignFactory(
        starts_at=assigned - timedelta(hours=1), conversion_days=14, status="running"
    )
    Campaign.objects.filter(pk=campaign.pk).update(points_awarded=100)
    campaign.refresh_from_db()
    treatment, control = members[:10], members[10:]
    for group, status, group_members in (
        (Group.TREATMENT, SendStatus.SENT, treatment),
        (Group.CONTROL, SendStatus.HELD_OUT, control),
    ):
        for member in group_members:
            add_send(campaign, member, group=group, status=status, at=assigned)
    excluded = consenting(1)[0]
    add_send(campaign, excluded, status=SendStatus.NO_CONSENT, at=assigned)

    def buy(member, amount, days_after, key):
        ingest_event(
            member=member,
            event_type="purchase",
            occurred_at=assigned + timedelta(days=days_after),
            idempotency_key=key,
            amount=Decimal(amount),
        )

    for number, member in enumerate(treatment[:9]):  # 9 of 10 convert, 20.00 each
        buy(member, "20.00", 3, f"t{number}")
    buy(treatment[0], "15.00", 2, "t-second")  # a second purchase in the window
    buy(treatment[9], "99.00", 15, "t-late")  # after the 14 days: no conversion
    buy(treatment[9], "50.00", -1, "t-early")  # before the send: no conversion
    for number, member in enumerate(control[:3]):  # 3 of 10 convert, 30.00 each
        buy(member, "30.00", 5, f"c{number}")
    buy(excluded, "500.00", 1, "x")  # excluded members are not in either group

    result = selectors.results_for(campaign)

    assert (result.treatment.members, result.treatment.conversions) == (10, 9)
    assert (result.control.members, result.control.conversions) == (10, 3)
    assert result.treatment.revenue == Decimal("195.00")
    assert result.control.revenue == Decimal("90.00")
    assert result.treatment.revenue_per_member == Decimal("19.50")
    assert result.control.revenue_per_member == Decimal("9.00")
    assert result.excluded == 1
    assert result.uplift.difference == pytest.approx(0.6)
    assert (round(result.uplift.low, 4), round(result.uplift.high, 4)) == (0.1705, 0.8090)
    assert result.uplift.significant
    # (19.50 − 9.00) × 10 treatment members
    assert result.incremental_revenue == Decimal("105.00")
    assert (result.points_cost, result.cost) == (100, Decimal("1.00"))
    assert result.roi == Decimal("104.00")  # (105 − 1) / 1

    data = result.as_dict()
    assert data["uplift"]["ci95_low"] == pytest.approx(0.170523, abs=1e-6)
    assert data["treatment"]["revenue_per_member"] == "19.50"
    assert data["roi"] == "104.00"
