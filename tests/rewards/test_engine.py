from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from rewards.models import (
    EarningRuleKind,
    PointsAccount,
    PointsTransaction,
    Purchase,
    RuleAward,
)
from rewards.services import (
    EventInput,
    award_for_event,
    award_points,
    reverse_order,
    set_member_tier,
    simulate_award,
    spend_points,
    subscribe,
)

from .factories import EarningRuleFactory, MemberFactory, MembershipPlanFactory, TierFactory
from .helpers import assert_consistent, at, balance

pytestmark = pytest.mark.django_db


def purchase(amount, order_id="", **kwargs) -> EventInput:
    return EventInput(event_type="purchase", amount=Decimal(amount), order_id=order_id, **kwargs)


def earn(member, event, key=None):
    return award_for_event(member=member, event=event, idempotency_key=key or f"k-{id(event)}")


def fixed_rule(event_type, points, **kwargs):
    return EarningRuleFactory(
        kind=EarningRuleKind.FIXED, event_type=event_type, points=points, **kwargs
    )


def multiplier(factor, **kwargs):
    return EarningRuleFactory(kind=EarningRuleKind.MULTIPLIER, factor=Decimal(factor), **kwargs)


# -- purchase rules and filters --------------------------------------------------------------


def test_purchase_earns_points_per_money_unit_rounded_down(program):
    EarningRuleFactory(name="Per euro", points_per_unit=Decimal("1"))
    member = MemberFactory()
    award = earn(member, purchase("42.90", "ORD-1"), "e1")
    assert award.points == 42
    assert award.lines[0].rule_name == "Per euro" and award.lines[0].points == 42
    assert award.transaction.source_ref == "ORD-1" and award.transaction.points == 42
    assert balance(member) == 42
    assert Purchase.objects.get(member=member).points == 42


@pytest.mark.parametrize(("rounding", "expected"), [("down", 42), ("nearest", 43), ("up", 43)])
def test_rounding_setting_decides_money_to_points(program, rounding, expected):
    program.rounding = rounding
    program.save()
    EarningRuleFactory()
    assert simulate_award(member=MemberFactory(), event=purchase("42.50")).points == expected


def test_minimum_amount_filter(program):
    EarningRuleFactory(min_amount=Decimal("20"))
    member = MemberFactory()
    assert simulate_award(member=member, event=purchase("19.99")).points == 0
    assert simulate_award(member=member, event=purchase("20.00")).points == 20


def test_channel_and_touchpoint_filters(program):
    EarningRuleFactory(channel="pos", touchpoint="store-utrecht")
    member = MemberFactory()
    match = purchase("10", channel="pos", touchpoint="store-utrecht")
    assert simulate_award(member=member, event=match).points == 10
    other_channel = purchase("10", channel="web", touchpoint="store-utrecht")
    other_touchpoint = purchase("10", channel="pos", touchpoint="store-delft")
    assert simulate_award(member=member, event=other_channel).points == 0
    assert simulate_award(member=member, event=other_touchpoint).points == 0


def test_category_rule_counts_only_matching_items(program):
    EarningRuleFactory(name="Shoes ×3", product_category="shoes", points_per_unit=Decimal("3"))
    member = MemberFactory()
    event = purchase(
        "80",
        properties={
            "items": [
                {"sku": "SH-1", "category": "shoes", "amount": "25", "quantity": 2},
                {"sku": "TS-1", "category": "shirts", "amount": "30"},
            ]
        },
    )
    assert simulate_award(member=member, event=event).points == 150
    shirts_only = purchase("30", properties={"items": [{"category": "shirts", "amount": "30"}]})
    assert simulate_award(member=member, event=shirts_only).points == 0


def test_sku_rule_matches_event_properties(program):
    EarningRuleFactory(sku="GIFT-CARD", points_per_unit=Decimal("2"))
    member = MemberFactory()
    assert (
        simulate_award(member=member, event=purchase("10", properties={"sku": "GIFT-CARD"})).points
        == 20
    )
    assert (
        simulate_award(member=member, event=purchase("10", properties={"sku": "OTHER"})).points == 0
    )


def test_purchase_in_another_currency_earns_nothing(program):
    EarningRuleFactory()
    event = purchase("10", currency="USD")
    assert simulate_award(member=MemberFactory(), event=event).points == 0


def test_inactive_rule_and_rule_outside_its_window_do_not_apply(program):
    EarningRuleFactory(is_active=False)
    EarningRuleFactory(active_from=at(2025, 6, 1), active_until=at(2025, 7, 1))
    member = MemberFactory()
    assert (
        simulate_award(member=member, event=purchase("10", occurred_at=at(2025, 5, 31))).points == 0
    )
    assert (
        simulate_award(member=member, event=purchase("10", occurred_at=at(2025, 6, 15))).points
        == 10
    )
    assert (
        simulate_award(member=member, event=purchase("10", occurred_at=at(2025, 7, 1))).points == 0
    )


# -- fixed events ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event_type", ["signup", "birthday", "review", "share", "survey_completed", "unboxing_video"]
)
def test_fixed_points_for_event_types(program, event_type):
    fixed_rule(event_type, 75, name=f"{event_type} bonus")
    fixed_rule("something_else", 999)
    member = MemberFactory()
    award = earn(member, EventInput(event_type=event_type), f"fixed-{event_type}")
    assert award.points == 75
    assert [line.rule_name for line in award.lines] == [f"{event_type} bonus"]
    assert balance(member) == 75


def test_event_without_matching_rule_awards_nothing_and_writes_no_transaction(program):
    member = MemberFactory()
    award = earn(member, EventInput(event_type="page_view"), "pv")
    assert award.points == 0 and award.transaction is None
    assert not PointsTransaction.objects.exists()


# -- stacking --------------------------------------------------------------------------------


def test_stackable_rules_all_apply(program):
    EarningRuleFactory(name="Base", points_per_unit=Decimal("1"))
    EarningRuleFactory(name="Extra", points_per_unit=Decimal("0.5"))
    award = simulate_award(member=MemberFactory(), event=purchase("40"))
    assert award.points == 60
    assert {line.rule_name: line.points for line in award.lines} == {"Base": 40, "Extra": 20}


def test_only_highest_priority_non_stackable_rule_of_a_kind_applies(program):
    EarningRuleFactory(name="Standard", stackable=False, priority=1)
    EarningRuleFactory(name="Summer", stackable=False, priority=5, points_per_unit=Decimal("2"))
    EarningRuleFactory(name="Always extra", stackable=True, points_per_unit=Decimal("0.1"))
    award = simulate_award(member=MemberFactory(), event=purchase("50"))
    assert {line.rule_name for line in award.lines} == {"Summer", "Always extra"}
    assert award.points == 105


def test_non_stacking_multipliers_pick_the_highest_priority(program):
    EarningRuleFactory(name="Base")
    multiplier("3", name="Big", stackable=False, priority=1)
    multiplier("2", name="Preferred", stackable=False, priority=9)
    award = simulate_award(member=MemberFactory(), event=purchase("10"))
    assert {line.rule_name: line.points for line in award.lines} == {"Base": 10, "Preferred": 10}


# -- multipliers -----------------------------------------------------------------------------


def test_multiplier_in_date_window_and_channel(program):
    EarningRuleFactory(name="Base")
    multiplier(
        "2",
        name="App weekend",
        channel="app",
        active_from=at(2025, 5, 3),
        active_until=at(2025, 5, 5),
    )
    member = MemberFactory()
    inside = purchase("10", channel="app", occurred_at=at(2025, 5, 4, 12))
    assert simulate_award(member=member, event=inside).points == 20
    web = purchase("10", channel="web", occurred_at=at(2025, 5, 4, 12))
    assert simulate_award(member=member, event=web).points == 10
    after = purchase("10", channel="app", occurred_at=at(2025, 5, 5, 12))
    assert simulate_award(member=member, event=after).points == 10


def test_tier_multiplier_and_tier_filtered_rule(program):
    TierFactory(name="Bronze", rank=1, points_threshold=0)
    gold = TierFactory(name="Gold", rank=3, points_threshold=100000, earn_multiplier=Decimal("1.5"))
    EarningRuleFactory(name="Base")
    multiplier("2", name="Gold double", tier=gold)
    member = MemberFactory()
    assert simulate_award(member=member, event=purchase("10")).points == 10
    set_member_tier(member=member, tier=gold)
    award = simulate_award(member=member, event=purchase("10"))
    assert {line.rule_name: line.points for line in award.lines} == {
        "Base": 10,
        "Gold double": 10,
        "Gold tier bonus": 5,
    }
    assert award.points == 25


def test_paid_plan_multiplier_and_plan_filtered_rule(program):
    plan = MembershipPlanFactory(name="Plus", earn_multiplier=Decimal("1.5"), trial_days=0)
    EarningRuleFactory(name="Base")
    multiplier("3", name="Plus triple", plan=plan)
    member = MemberFactory()
    assert simulate_award(member=member, event=purchase("10")).points == 10
    subscribe(member=member, plan=plan)
    award = simulate_award(member=member, event=purchase("10"))
    assert {line.rule_name: line.points for line in award.lines} == {
        "Base": 10,
        "Plus triple": 20,
        "Plus plan bonus": 5,
    }


# -- limits ----------------------------------------------------------------------------------


def test_count_limit_per_day_resets_the_next_day(program):
    fixed_rule("review", 50, max_count_per_day=2)
    member = MemberFactory()
    day = at(2025, 4, 10, 9)
    results = [
        earn(member, EventInput(event_type="review", occurred_at=day + timedelta(hours=i)), f"r{i}")
        for i in range(3)
    ]
    assert [r.points for r in results] == [50, 50, 0]
    assert "daily limit of 2 reached" in results[2].lines[0].note
    next_day = EventInput(event_type="review", occurred_at=at(2025, 4, 11, 9))
    assert earn(member, next_day, "r-next").points == 50
    assert balance(member) == 150


def test_points_limit_per_week_caps_the_last_award(program):
    fixed_rule("share", 40, max_points_per_week=100)
    member = MemberFactory()
    monday = at(2025, 4, 7, 10)
    got = [
        earn(
            member, EventInput(event_type="share", occurred_at=monday + timedelta(days=i)), f"s{i}"
        ).points
        for i in range(4)
    ]
    assert got == [40, 40, 20, 0]
    next_monday = EventInput(event_type="share", occurred_at=at(2025, 4, 14, 10))
    assert earn(member, next_monday, "s-next").points == 40


def test_count_limit_per_month(program):
    fixed_rule("survey_completed", 100, max_count_per_month=1)
    member = MemberFactory()
    assert (
        earn(member, EventInput("survey_completed", occurred_at=at(2025, 3, 2)), "a").points == 100
    )
    assert (
        earn(member, EventInput("survey_completed", occurred_at=at(2025, 3, 30)), "b").points == 0
    )
    assert (
        earn(member, EventInput("survey_completed", occurred_at=at(2025, 4, 1)), "c").points == 100
    )


def test_points_limit_per_month_on_purchase_rule(program):
    EarningRuleFactory(max_points_per_month=100)
    member = MemberFactory()
    assert earn(member, purchase("70", "O1", occurred_at=at(2025, 3, 2)), "a").points == 70
    assert earn(member, purchase("70", "O2", occurred_at=at(2025, 3, 3)), "b").points == 30
    assert earn(member, purchase("70", "O3", occurred_at=at(2025, 4, 3)), "c").points == 70


def test_lifetime_limits_by_count_and_by_points(program):
    fixed_rule("signup", 200, max_count_lifetime=1)
    fixed_rule("referral", 300, max_points_lifetime=500)
    member = MemberFactory()
    assert earn(member, EventInput("signup"), "s1").points == 200
    assert earn(member, EventInput("signup"), "s2").points == 0
    assert [earn(member, EventInput("referral"), f"r{i}").points for i in range(3)] == [300, 200, 0]
    assert RuleAward.objects.filter(member=member).count() == 3


def test_limits_are_per_member(program):
    fixed_rule("signup", 200, max_count_lifetime=1)
    first, second = MemberFactory(), MemberFactory()
    assert earn(first, EventInput("signup"), "a").points == 200
    assert earn(second, EventInput("signup"), "b").points == 200


# -- breakdown, idempotency, dry run ---------------------------------------------------------


def test_breakdown_lines_are_stored_on_the_transaction(program):
    EarningRuleFactory(name="Base")
    multiplier("2", name="Double")
    member = MemberFactory()
    award = earn(member, purchase("15", "ORD-9"), "b1")
    stored = award.transaction.breakdown
    assert stored["event_type"] == "purchase" and stored["amount"] == "15"
    assert [(line["rule_name"], line["points"]) for line in stored["lines"]] == [
        ("Base", 15),
        ("Double", 15),
    ]


def test_same_key_returns_the_first_award(program):
    EarningRuleFactory()
    member = MemberFactory()
    first = earn(member, purchase("30", "ORD-1"), "same")
    again = earn(member, purchase("30", "ORD-1"), "same")
    assert again.transaction.pk == first.transaction.pk and again.points == 30
    assert [line.points for line in again.lines] == [30]
    assert balance(member) == 30


def test_same_order_with_another_key_is_not_awarded_twice(program):
    EarningRuleFactory()
    member = MemberFactory()
    earn(member, purchase("30", "ORD-1"), "one")
    again = earn(member, purchase("30", "ORD-1"), "two")
    assert again.points == 0 and again.transaction is None
    assert balance(member) == 30


def test_dry_run_writes_nothing(program):
    EarningRuleFactory(max_count_lifetime=1)
    member = MemberFactory()
    before = {
        model: model.objects.count()
        for model in (PointsAccount, PointsTransaction, Purchase, RuleAward)
    }
    award = award_for_event(
        member=member, event=purchase("25", "ORD-1"), idempotency_key="d", dry_run=True
    )
    again = simulate_award(member=member, event=purchase("25", "ORD-1"))
    assert award.points == 25 and again.points == 25 and award.transaction is None
    after = {model: model.objects.count() for model in before}
    assert after == before


def test_suspended_member_earns_nothing(program):
    from members.services import suspend_member

    EarningRuleFactory()
    member = suspend_member(member=MemberFactory())
    assert earn(member, purchase("25", "O"), "x").points == 0
    assert balance(member) == 0


def test_pending_award_reports_its_points(program):
    program.pending_days = 30
    program.save()
    EarningRuleFactory()
    member = MemberFactory()
    award = earn(member, purchase("25", "O"), "x")
    assert award.points == 25 and award.transaction.pending_points == 25
    assert PointsAccount.objects.get(member=member).pending == 25


# -- refunds ---------------------------------------------------------------------------------


def test_refund_reverses_all_of_the_orders_points(program):
    EarningRuleFactory(name="Base")
    multiplier("2", name="Double")
    member = MemberFactory()
    with time_machine.travel(at(2025, 2, 1, 12), tick=False):
        earn(member, purchase("40", "ORD-R"), "buy")
        earn(member, purchase("10", "ORD-KEEP"), "buy2")
    with time_machine.travel(at(2025, 2, 20, 12), tick=False):
        reversal = reverse_order(
            member=member, order_id="ORD-R", idempotency_key="refund-1", reason="returned"
        )
        again = reverse_order(
            member=member, order_id="ORD-R", idempotency_key="refund-2", reason="again"
        )
    assert reversal.points == -80 and again.pk == reversal.pk
    assert reversal.breakdown["shortfall"] == 0
    assert balance(member) == 20
    account = PointsAccount.objects.get(member=member)
    assert account.lifetime_earned == 20
    assert Purchase.objects.get(order_id="ORD-R").refunded_at is not None
    assert_consistent(member)


def test_refund_after_points_were_spent_records_the_shortfall(program):
    EarningRuleFactory()
    member = MemberFactory()
    earn(member, purchase("100", "ORD-S"), "buy")
    spend_points(member=member, points=70, reason="reward", idempotency_key="spend")
    award_points(member=member, points=10, reason="bonus", idempotency_key="bonus")
    reversal = reverse_order(member=member, order_id="ORD-S", idempotency_key="refund", reason="r")
    assert reversal.points == -40
    assert reversal.breakdown["requested"] == 100 and reversal.breakdown["shortfall"] == 60
    assert balance(member) == 0
    assert_consistent(member)


def test_refund_of_pending_points_cancels_them(program):
    program.pending_days = 14
    program.save()
    EarningRuleFactory()
    member = MemberFactory()
    earn(member, purchase("50", "ORD-P"), "buy")
    reversal = reverse_order(member=member, order_id="ORD-P", idempotency_key="refund", reason="r")
    assert reversal.pending_points == -50 and reversal.breakdown["shortfall"] == 0
    account = PointsAccount.objects.get(member=member)
    assert (account.balance, account.pending) == (0, 0)
    assert_consistent(member)


def test_refund_of_unknown_order_returns_none(program):
    member = MemberFactory()
    assert reverse_order(member=member, order_id="NOPE", idempotency_key="x", reason="r") is None
