"""Stage rules of every kind, with time travel: each move is kept with its time and cause."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from journeys import tasks
from journeys.models import (
    JourneyStage,
    MemberJourney,
    StageKind,
    StageRule,
    StageRuleKind,
    StageTransition,
    TransitionCause,
)
from journeys.services import evaluate_stages, ingest_event

from .factories import MemberFactory

AMS = ZoneInfo("Europe/Amsterdam")
START = datetime(2025, 1, 6, 10, 0, tzinfo=AMS)


def send(member, event_type, key, **extra):
    if event_type == "purchase":
        extra.setdefault("amount", Decimal("20.00"))
        extra.setdefault("order_id", key)
    return ingest_event(
        member=member,
        event_type=event_type,
        occurred_at=extra.pop("occurred_at", timezone.now()),
        idempotency_key=key,
        **extra,
    )


def path(member) -> list[tuple[str | None, str, str]]:
    return [
        (t.from_stage.slug if t.from_stage else None, t.to_stage.slug, t.cause)
        for t in StageTransition.objects.filter(member=member)
        .select_related("from_stage", "to_stage")
        .order_by("at", "id")
    ]


def current(member) -> str | None:
    journey = MemberJourney.objects.filter(member=member).select_related("stage").first()
    return journey.stage.slug if journey and journey.stage else None


@pytest.mark.django_db
def test_event_type_rules_move_a_member_forward_and_keep_the_cause():
    member = MemberFactory()
    with time_machine.travel(START, tick=False):
        signup = send(member, "signup", "s-1")
        send(member, "page_view", "pv-1")  # awareness again: no move
        cart = send(member, "cart_add", "c-1")
        first = send(member, "purchase", "p-1")

    assert path(member) == [
        (None, "awareness", "event"),
        ("awareness", "consideration", "event"),
        ("consideration", "first-purchase", "event"),
    ]
    transitions = list(StageTransition.objects.filter(member=member).order_by("at", "id"))
    assert [t.event_id for t in transitions] == [signup.event.pk, cart.event.pk, first.event.pk]
    assert all(t.rule.kind == StageRuleKind.ON_EVENT_TYPE for t in transitions)
    assert all(t.at == START for t in transitions)
    assert first.response["stage"]["slug"] == "first-purchase"
    assert first.response["stage_changed"] is True


@pytest.mark.django_db
def test_purchase_count_rules_reach_repeat_and_loyal_within_the_window():
    member = MemberFactory()
    for week in range(5):
        with time_machine.travel(START + timedelta(weeks=week), tick=False):
            send(member, "purchase", f"p-{week}")

    assert [step[1] for step in path(member)] == ["first-purchase", "repeat", "loyal"]
    loyal = StageTransition.objects.get(member=member, to_stage__slug="loyal")
    assert loyal.at == START + timedelta(weeks=4)
    assert (loyal.rule.kind, loyal.rule.count) == (StageRuleKind.PURCHASE_COUNT, 5)


@pytest.mark.django_db
def test_purchases_further_apart_than_the_window_do_not_make_a_repeat_buyer(stages):
    StageRule.objects.filter(stage__kind=StageKind.INACTIVITY).update(active=False)
    member = MemberFactory()
    with time_machine.travel(START, tick=False):
        send(member, "purchase", "p-1")
    with time_machine.travel(START + timedelta(days=400), tick=False):
        send(member, "purchase", "p-2")
    assert current(member) == "first-purchase"
    with time_machine.travel(START + timedelta(days=430), tick=False):
        send(member, "purchase", "p-3")
    assert current(member) == "repeat"


@pytest.mark.django_db
def test_advocacy_events_make_an_advocate_and_later_purchases_do_not_move_them_back():
    member = MemberFactory()
    with time_machine.travel(START, tick=False):
        send(member, "purchase", "p-1")
        result = send(member, "review", "r-1")
        send(member, "purchase", "p-2")  # repeat is below advocate: stays
        send(member, "cart_add", "c-1")

    assert result.response["stage"]["slug"] == "advocate"
    assert current(member) == "advocate"
    advocate = StageTransition.objects.get(to_stage__slug="advocate")
    assert advocate.rule.kind == StageRuleKind.ADVOCACY_EVENTS


@pytest.mark.django_db
def test_advocacy_rule_counts_share_and_referral_too_within_its_window(stages):
    StageRule.objects.filter(kind=StageRuleKind.ADVOCACY_EVENTS).update(count=2, window_days=30)
    member = MemberFactory()
    with time_machine.travel(START, tick=False):
        send(member, "share", "sh-1")
    with time_machine.travel(START + timedelta(days=40), tick=False):
        send(member, "referral", "rf-1")
    assert current(member) is None  # one in each window: not yet
    with time_machine.travel(START + timedelta(days=45), tick=False):
        send(member, "share", "sh-2")
    assert current(member) == "advocate"


@pytest.mark.django_db
def test_inactivity_moves_to_at_risk_then_lapsed_dated_when_each_threshold_passed():
    member = MemberFactory()
    with time_machine.travel(START, tick=False):
        send(member, "purchase", "p-1")

    with time_machine.travel(START + timedelta(days=89), tick=False):
        assert evaluate_stages() == 0
    assert current(member) == "first-purchase"

    with time_machine.travel(START + timedelta(days=91), tick=False):
        assert evaluate_stages() == 1
        assert evaluate_stages() == 0  # the same night again moves nobody
    assert current(member) == "at-risk"

    with time_machine.travel(START + timedelta(days=200), tick=False):
        assert tasks.evaluate_stages() == 1
    assert current(member) == "lapsed"
    assert path(member) == [
        (None, "first-purchase", "event"),
        ("first-purchase", "at-risk", "inactivity"),
        ("at-risk", "lapsed", "inactivity"),
    ]
    at_risk, lapsed = StageTransition.objects.filter(cause=TransitionCause.INACTIVITY).order_by(
        "at"
    )
    # thresholds are exact durations after the last event (a DST change moves the wall clock)
    assert at_risk.at == START.astimezone(UTC) + timedelta(days=90)
    assert lapsed.at == START.astimezone(UTC) + timedelta(days=180)
    assert at_risk.rule.days == 90 and lapsed.rule.days == 180
    assert at_risk.event is None


@pytest.mark.django_db
def test_a_late_nightly_run_records_both_inactivity_stages():
    member = MemberFactory()
    with time_machine.travel(START, tick=False):
        send(member, "cart_add", "c-1")
    with time_machine.travel(START + timedelta(days=365), tick=False):
        assert evaluate_stages() == 2
    assert [step[1] for step in path(member)] == ["consideration", "at-risk", "lapsed"]


@pytest.mark.django_db
def test_any_event_brings_a_lapsed_member_back_to_where_they_were():
    member = MemberFactory()
    with time_machine.travel(START, tick=False):
        for n in range(2):
            send(member, "purchase", f"p-{n}")
    with time_machine.travel(START + timedelta(days=200), tick=False):
        evaluate_stages()
        assert current(member) == "lapsed"
        back = send(member, "page_view", "pv-1")

    assert back.response["stage"]["slug"] == "repeat"
    last = StageTransition.objects.filter(member=member).order_by("at", "id").last()
    assert (last.from_stage.slug, last.to_stage.slug) == ("lapsed", "repeat")
    assert last.cause == "returned"
    assert last.event_id == back.event.pk


@pytest.mark.django_db
def test_an_event_after_a_long_silence_records_the_missed_inactivity_first():
    member = MemberFactory()
    with time_machine.travel(START, tick=False):
        send(member, "purchase", "p-1")
    with time_machine.travel(START + timedelta(days=100), tick=False):
        send(member, "review", "r-1")  # the nightly job never ran in between
    assert path(member) == [
        (None, "first-purchase", "event"),
        ("first-purchase", "at-risk", "inactivity"),
        ("at-risk", "advocate", "event"),
    ]


@pytest.mark.django_db
def test_stage_rules_are_configurable(stages):
    StageRule.objects.filter(stage=stages["first-purchase"]).update(event_type="signup")
    vip = JourneyStage.objects.create(order=9, name="VIP", slug="vip", kind=StageKind.LIFECYCLE)
    StageRule.objects.create(stage=vip, kind=StageRuleKind.ON_EVENT_TYPE, event_type="purchase")
    member = MemberFactory()

    send(member, "signup", "s-1")
    assert current(member) == "first-purchase"
    send(member, "purchase", "p-1")
    assert current(member) == "vip"


@pytest.mark.django_db
def test_rule_validation_names_the_missing_setting(stages):
    from django.core.exceptions import ValidationError

    rule = StageRule(stage=stages["repeat"], kind=StageRuleKind.PURCHASE_COUNT, count=2)
    with pytest.raises(ValidationError) as missing:
        rule.full_clean()
    assert "window_days" in missing.value.message_dict

    wrong = StageRule(stage=stages["loyal"], kind=StageRuleKind.INACTIVITY_DAYS, days=30)
    with pytest.raises(ValidationError) as kind:
        wrong.full_clean()
    assert "kind" in kind.value.message_dict
