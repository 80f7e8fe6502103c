"""A campaign's multiplier goes through the earning engine: only for the treatment members it
was sent to, only inside the campaign's window, and never beyond its points budget."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, Group, OfferAward, OfferKind, SendStatus
from rewards.services import EventInput, award_for_event, simulate_award
from tests.campaigns.factories import CampaignFactory, SegmentFactory, add_send
from tests.rewards.factories import EarningRuleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rule(db):
    return EarningRuleFactory(points_per_unit=Decimal("1"))


def purchase(amount: str, when=None, order: str = "") -> EventInput:
    return EventInput(
        event_type="purchase",
        amount=Decimal(amount),
        occurred_at=when or timezone.now(),
        order_id=order,
    )


def double_points(**kwargs):
    defaults = {
        "offer_kind": OfferKind.MULTIPLIER,
        "offer_title": "Double points",
        "multiplier": Decimal("2"),
        "control_share": Decimal("0"),
    }
    return CampaignFactory(**{**defaults, **kwargs})


def running(campaign):
    campaign.status = "running"
    campaign.save()
    return campaign


def test_multiplier_doubles_points_inside_the_window_only(consenting, rule):
    member = consenting(1)[0]
    start = timezone.now() - timedelta(days=2)
    end = timezone.now() + timedelta(days=2)
    campaign = running(double_points(starts_at=start, ends_at=end))
    add_send(campaign, member, at=start)

    before = award_for_event(
        member=member, event=purchase("50", start - timedelta(minutes=1), "a"), idempotency_key="a"
    )
    inside = award_for_event(member=member, event=purchase("50", order="b"), idempotency_key="b")
    after = award_for_event(
        member=member, event=purchase("50", end + timedelta(minutes=1), "c"), idempotency_key="c"
    )

    assert (before.points, inside.points, after.points) == (50, 100, 50)
    line = inside.lines[-1]
    assert (line.rule_name, line.points, line.note) == (campaign.offer_label, 50, "×2")
    campaign.refresh_from_db()
    assert campaign.points_awarded == 50
    award = OfferAward.objects.get()
    assert (award.member_id, award.points, award.transaction_id) == (
        member.pk,
        50,
        inside.transaction.pk,
    )


def test_multiplier_is_not_given_to_control_or_unsent_members(consenting, rule):
    control, excluded, outsider = consenting(3)
    campaign = running(double_points())
    add_send(campaign, control, group=Group.CONTROL, status=SendStatus.HELD_OUT)
    add_send(campaign, excluded, status=SendStatus.CAPPED)

    for number, member in enumerate([control, excluded, outsider]):
        award = award_for_event(
            member=member, event=purchase("40", order=f"o{number}"), idempotency_key=f"o{number}"
        )
        assert award.points == 40
    assert not OfferAward.objects.exists()


def test_multiplier_of_a_cancelled_campaign_stops(consenting, rule):
    member = consenting(1)[0]
    campaign = running(double_points())
    add_send(campaign, member)
    services.cancel_campaign(campaign=campaign)
    award = award_for_event(member=member, event=purchase("30", order="x"), idempotency_key="x")
    assert award.points == 30


def test_multiplier_stops_at_the_points_budget(consenting, rule):
    first, second = consenting(2)
    campaign = running(double_points(points_budget=70))
    add_send(campaign, first)
    add_send(campaign, second)

    a = award_for_event(member=first, event=purchase("50", order="1"), idempotency_key="1")
    b = award_for_event(member=second, event=purchase("50", order="2"), idempotency_key="2")
    c = award_for_event(member=first, event=purchase("50", order="3"), idempotency_key="3")

    assert (a.points, b.points, c.points) == (100, 70, 50)
    campaign.refresh_from_db()
    assert campaign.points_awarded == 70
    assert campaign.budget_left == 0


def test_offers_and_their_budgets_are_read_in_three_statements_however_many(
    consenting, django_assert_num_queries
):
    member = consenting(1)[0]
    campaigns = [running(double_points(points_budget=100)) for _ in range(4)]
    reviews_only = running(double_points(points_budget=100, multiplier_event_type="review"))
    for campaign in [*campaigns, reviews_only]:
        add_send(campaign, member)
    Campaign.objects.filter(pk=campaigns[1].pk).update(points_awarded=100)  # spent
    Campaign.objects.filter(pk=campaigns[2].pk).update(points_awarded=60)

    # Is any running, find them, lock the budgets.
    with transaction.atomic(), django_assert_num_queries(3):
        offers = services.multiplier_offers(member.pk, purchase("10"), timezone.now())

    assert [(offer.label, offer.max_points) for offer in offers] == [
        (campaigns[0].offer_label, 100),
        (campaigns[2].offer_label, 40),
        (campaigns[3].offer_label, 100),
    ]


def test_with_no_multiplier_campaign_running_an_award_asks_once(consenting):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    member = consenting(1)[0]
    later = running(double_points())
    add_send(later, member)
    Campaign.objects.filter(pk=later.pk).update(  # running, but its window has not begun
        starts_at=timezone.now() + timedelta(days=1), ends_at=timezone.now() + timedelta(days=8)
    )

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert services.multiplier_offers(member.pk, purchase("10"), timezone.now()) == []
    assert len(queries) == 1
    assert "campaignsend" not in queries[0]["sql"]  # no look-up of the member's sends
    inside = timezone.now() + timedelta(days=2)
    assert [o.label for o in services.multiplier_offers(member.pk, purchase("10"), inside)] == [
        later.offer_label
    ]


def test_simulating_an_award_shows_the_offer_and_books_nothing(consenting, rule):
    member = consenting(1)[0]
    campaign = running(double_points(points_budget=1000))
    add_send(campaign, member)
    award = simulate_award(member=member, event=purchase("10"))
    assert award.points == 20
    campaign.refresh_from_db()
    assert campaign.points_awarded == 0
    assert not OfferAward.objects.exists()


def test_multiplier_applies_only_to_its_event_type(consenting, rule):
    EarningRuleFactory(kind="fixed", event_type="review", points=10)
    member = consenting(1)[0]
    campaign = running(double_points())
    add_send(campaign, member)
    review = award_for_event(
        member=member,
        event=EventInput(event_type="review", occurred_at=timezone.now()),
        idempotency_key="r",
    )
    assert review.points == 10


def test_offers_page_lists_running_offers_the_member_received(client, consenting):
    member = consenting(1)[0]
    segment = SegmentFactory()
    live = running(double_points(segment=segment, offer_title="Double points weekend"))
    ended = running(
        double_points(
            segment=segment,
            offer_title="Old offer",
            starts_at=timezone.now() - timedelta(days=10),
            ends_at=timezone.now() - timedelta(days=1),
        )
    )
    held_out = running(double_points(segment=segment, offer_title="Control sees nothing"))
    add_send(live, member)
    add_send(ended, member, at=ended.starts_at)
    add_send(held_out, member, group=Group.CONTROL, status=SendStatus.HELD_OUT)
    client.force_login(member.user)

    page = client.get("/portal/offers/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "Double points weekend" in text
    assert "Old offer" not in text
    assert "Control sees nothing" not in text
