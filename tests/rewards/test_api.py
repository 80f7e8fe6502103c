"""The rewards REST API under /api/v1/: balances, ledger, adjustments, catalogue, redemptions,
program configuration and paid plans."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.utils import timezone
from rest_framework.test import APIClient

from members.roles import MARKETER, SUPPORT
from members.services import create_api_key
from rewards.models import (
    EarningRule,
    ExpiryPolicy,
    MembershipPlan,
    PointsBucket,
    PointsTransaction,
    Redemption,
    Subscription,
    SubscriptionPayment,
    SubscriptionStatus,
    Tier,
    TierBasis,
    TransactionKind,
)
from rewards.services import adjust_points, award_points, redeem_reward, subscribe
from tests.conftest import make_staff

from .factories import (
    EarningRuleFactory,
    MemberFactory,
    MembershipPlanFactory,
    RewardFactory,
    TierFactory,
)
from .helpers import assert_consistent, balance

pytestmark = pytest.mark.django_db

API = "/api/v1"


def give(user, *dotted: str) -> None:
    for name in dotted:
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )


def client_for(user) -> APIClient:
    _, raw = create_api_key(user=user, name=f"key for {user.username}")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


def member_with(points: int):
    member = MemberFactory()
    if points:
        award_points(member=member, points=points, reason="seed", idempotency_key=f"s-{member.pk}")
    return member


@pytest.fixture
def marketer_api(db):
    return client_for(make_staff("mkt", MARKETER))


# -- balance and ledger ----------------------------------------------------------------------


def test_balance_shows_points_tier_progress_and_expiring_points(api, program):
    program.expiry_policy = ExpiryPolicy.ROLLING_MONTHS
    program.expiry_months = 1
    program.save()
    TierFactory(name="Bronze", rank=1, points_threshold=0)
    TierFactory(name="Silver", rank=2, points_threshold=1000)
    member = member_with(300)
    expires_at = PointsBucket.objects.get(member=member).expires_at
    expected_day = (expires_at - timedelta(microseconds=1)).astimezone(
        timezone.get_default_timezone()
    )

    response = api.get(f"{API}/members/{member.pk}/balance/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["balance"] == 300 and body["pending"] == 0
    assert body["tier"] == "Bronze" and body["next_tier"] == "Silver"
    assert body["points_to_next_tier"] == 700 and body["spend_to_next_tier"] is None
    assert body["progress_percent"] == 30
    assert body["expiring"] == [{"date": expected_day.date().isoformat(), "points": 300}]


def test_balance_of_a_member_without_points_is_zero(api):
    member = MemberFactory()
    body = api.get(f"{API}/members/{member.pk}/balance/").json()
    assert body["balance"] == 0 and body["tier"] is None and body["expiring"] == []


def test_balance_of_unknown_member_is_404(api):
    assert api.get(f"{API}/members/999999/balance/").status_code == 404


def test_transactions_are_paginated_newest_first(api):
    member = member_with(100)
    adjust_points(member=member, points=-30, reason="broken", actor=None, idempotency_key="a1")
    adjust_points(member=member, points=5, reason="sorry", actor=None, idempotency_key="a2")
    MemberFactory()  # another member's ledger stays out

    first = api.get(f"{API}/members/{member.pk}/transactions/", {"page_size": 2}).json()

    assert first["count"] == 3 and first["next"]
    assert [(r["kind"], r["points"], r["balance_after"]) for r in first["results"]] == [
        ("adjust", 5, 75),
        ("adjust", -30, 70),
    ]
    assert first["results"][0]["reason"] == "sorry"
    assert set(first["results"][0]) == {
        "id",
        "kind",
        "points",
        "pending_points",
        "balance_after",
        "reason",
        "source",
        "source_ref",
        "occurred_at",
        "created_at",
    }
    rest = api.get(first["next"]).json()
    assert [r["points"] for r in rest["results"]] == [100]


def test_transactions_filter_by_kind(api):
    member = member_with(100)
    adjust_points(member=member, points=-30, reason="broken", actor=None, idempotency_key="a1")
    body = api.get(f"{API}/members/{member.pk}/transactions/", {"kind": "earn"}).json()
    assert [r["kind"] for r in body["results"]] == ["earn"]


def test_transactions_of_unknown_member_is_404(api):
    assert api.get(f"{API}/members/999999/transactions/").status_code == 404


# -- adjustments -----------------------------------------------------------------------------


def adjust(api, member, **body):
    payload = {"points": 50, "reason": "Goodwill", "idempotency_key": "adj-1", **body}
    return api.post(f"{API}/members/{member.pk}/adjustments/", payload, format="json")


def test_adjustment_adds_points_with_the_keys_user_as_actor(api, integration_user):
    member = member_with(100)

    response = adjust(api, member, points=50)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["balance"] == 150
    assert body["transaction"]["kind"] == "adjust" and body["transaction"]["points"] == 50
    txn = PointsTransaction.objects.get(pk=body["transaction"]["id"])
    assert txn.actor == integration_user and txn.reason == "Goodwill"
    assert_consistent(member)


def test_adjustment_repeat_returns_the_first_result(api):
    member = member_with(100)
    first = adjust(api, member, points=50)
    again = adjust(api, member, points=50)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["transaction"]["id"] == first.json()["transaction"]["id"]
    assert balance(member) == 150
    assert PointsTransaction.objects.filter(member=member, kind=TransactionKind.ADJUST).count() == 1


def test_adjustment_keys_are_per_member(api):
    one, two = member_with(100), member_with(100)
    assert adjust(api, one, idempotency_key="same").status_code == 201
    assert adjust(api, two, idempotency_key="same").status_code == 201
    assert (balance(one), balance(two)) == (150, 150)


def test_negative_adjustment_takes_points_away(api):
    member = member_with(100)
    response = adjust(api, member, points=-40)
    assert response.status_code == 201
    assert response.json()["balance"] == 60


def test_adjustment_below_zero_is_409_and_writes_nothing(api):
    member = member_with(100)
    response = adjust(api, member, points=-101)
    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_points"
    assert balance(member) == 100
    assert not PointsTransaction.objects.filter(kind=TransactionKind.ADJUST).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"points": 0}, "points"),
        ({"points": "lots"}, "points"),
        ({"points": 10**12}, "points"),
        ({"reason": ""}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "k" * 101}, "idempotency_key"),
    ],
)
def test_bad_adjustment_is_400_naming_the_field(api, body, field):
    member = member_with(100)
    response = adjust(api, member, **body)
    assert response.status_code == 400
    assert field in response.json()
    assert balance(member) == 100


def test_adjustment_without_reason_is_400(api):
    member = member_with(100)
    response = api.post(
        f"{API}/members/{member.pk}/adjustments/",
        {"points": 5, "idempotency_key": "k"},
        format="json",
    )
    assert response.status_code == 400 and "reason" in response.json()


def test_adjustment_for_unknown_member_is_404(api):
    response = api.post(
        f"{API}/members/999999/adjustments/",
        {"points": 5, "reason": "x", "idempotency_key": "k"},
        format="json",
    )
    assert response.status_code == 404


# -- catalogue -------------------------------------------------------------------------------


def test_support_key_lists_and_reads_the_catalogue(api):
    cheap = RewardFactory(name="Coffee", points_cost=100)
    RewardFactory(name="Mug", points_cost=500)
    listing = api.get(f"{API}/rewards/")
    assert listing.status_code == 200
    assert [r["name"] for r in listing.json()["results"]] == ["Coffee", "Mug"]
    detail = api.get(f"{API}/rewards/{cheap.pk}/")
    assert detail.status_code == 200 and detail.json()["points_cost"] == 100


def test_marketer_adds_a_reward(marketer_api):
    gold = TierFactory(name="Gold")
    response = marketer_api.post(
        f"{API}/rewards/",
        {
            "name": "Ten off",
            "kind": "money_off",
            "points_cost": 1000,
            "value": "10.00",
            "stock": 5,
            "min_tier": gold.pk,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["min_tier"] == gold.pk and response.json()["value"] == "10.00"


def test_support_cannot_add_rewards(api):
    response = api.post(
        f"{API}/rewards/", {"name": "x", "kind": "free_product", "points_cost": 5}, format="json"
    )
    assert response.status_code == 403


def test_rewards_cannot_be_deleted_through_the_api(marketer_api):
    give(get_user_model().objects.get(username="mkt"), "rewards.delete_reward")
    reward = RewardFactory()
    assert marketer_api.delete(f"{API}/rewards/{reward.pk}/").status_code == 405


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"points_cost": 0}, "points_cost"),
        ({"points_cost": -5}, "points_cost"),
        ({"kind": "money_off"}, "value"),
        ({"kind": "sticker"}, "kind"),
        (
            {"active_from": "2030-02-01T00:00:00Z", "active_until": "2030-01-01T00:00:00Z"},
            "active_until",
        ),
        ({"min_tier": 999999}, "min_tier"),
    ],
)
def test_bad_reward_is_400_naming_the_field(marketer_api, body, field):
    payload = {"name": "Mug", "kind": "free_product", "points_cost": 100, **body}
    response = marketer_api.post(f"{API}/rewards/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()


# -- redemptions -----------------------------------------------------------------------------


def redeem(api, member, reward, key="r-1"):
    return api.post(
        f"{API}/members/{member.pk}/redemptions/",
        {"reward": reward.pk, "idempotency_key": key},
        format="json",
    )


def test_redeem_spends_points_and_returns_code_and_balance(api, integration_user):
    member = member_with(500)
    reward = RewardFactory(points_cost=300, stock=2)

    response = redeem(api, member, reward)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["points"] == 300 and body["balance"] == 200 and len(body["code"]) == 10
    assert body["status"] == "completed" and body["reward"] == reward.pk
    redemption = Redemption.objects.get(pk=body["id"])
    assert redemption.actor == integration_user
    reward.refresh_from_db()
    assert reward.stock == 1
    assert_consistent(member)


def test_redeem_repeat_returns_the_first_redemption(api):
    member = member_with(500)
    reward = RewardFactory(points_cost=300)
    first = redeem(api, member, reward)
    again = redeem(api, member, reward)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["code"] == first.json()["code"]
    assert balance(member) == 200 and Redemption.objects.count() == 1


def make_conflict(code, member):
    if code == "insufficient_points":
        return RewardFactory(points_cost=501)
    if code == "out_of_stock":
        return RewardFactory(stock=0)
    if code == "limit_reached":
        reward = RewardFactory(per_member_limit=1)
        redeem_reward(member=member, reward=reward, idempotency_key="earlier")
        return reward
    if code == "tier_required":
        return RewardFactory(min_tier=TierFactory(name="Gold", points_threshold=10_000))
    if code == "reward_unavailable":
        return RewardFactory(is_active=False)
    raise AssertionError(code)


@pytest.mark.parametrize(
    "code",
    ["insufficient_points", "out_of_stock", "limit_reached", "tier_required", "reward_unavailable"],
)
def test_redeem_conflicts_are_409_with_their_code(api, code):
    member = member_with(500)
    reward = make_conflict(code, member)
    before = balance(member)

    response = redeem(api, member, reward)

    assert response.status_code == 409
    assert response.json()["code"] == code
    assert balance(member) == before


def test_redeem_unknown_reward_is_400_on_the_reward_field(api):
    member = member_with(500)
    response = api.post(
        f"{API}/members/{member.pk}/redemptions/",
        {"reward": 999999, "idempotency_key": "k"},
        format="json",
    )
    assert response.status_code == 400
    assert "reward" in response.json()


def test_redeem_without_key_is_400(api):
    member = member_with(500)
    reward = RewardFactory()
    response = api.post(
        f"{API}/members/{member.pk}/redemptions/", {"reward": reward.pk}, format="json"
    )
    assert response.status_code == 400 and "idempotency_key" in response.json()


def test_redeem_for_unknown_member_is_404(api):
    reward = RewardFactory()
    response = api.post(
        f"{API}/members/999999/redemptions/",
        {"reward": reward.pk, "idempotency_key": "k"},
        format="json",
    )
    assert response.status_code == 404


def test_list_a_members_redemptions(api):
    member = member_with(500)
    other = member_with(500)
    mug = RewardFactory(name="Mug", points_cost=100)
    redeem_reward(member=member, reward=mug, idempotency_key="m1")
    redeem_reward(member=other, reward=mug, idempotency_key="o1")
    body = api.get(f"{API}/members/{member.pk}/redemptions/").json()
    assert body["count"] == 1
    assert body["results"][0]["reward_name"] == "Mug"
    assert body["results"][0]["member"] == member.pk


def test_cancel_redemption_gives_points_back_and_a_second_cancel_is_409(api, integration_user):
    member = member_with(500)
    reward = RewardFactory(points_cost=300, stock=1)
    redemption = redeem_reward(member=member, reward=reward, idempotency_key="c1")
    url = f"{API}/redemptions/{redemption.pk}/cancel/"

    response = api.post(url, {"reason": "Out of stock in store"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled" and response.json()["balance"] == 500
    redemption.refresh_from_db()
    assert redemption.cancelled_by == integration_user
    reward.refresh_from_db()
    assert reward.stock == 1
    again = api.post(url, {"reason": "again"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "already_cancelled"
    assert balance(member) == 500


def test_cancel_redemption_needs_a_reason(api):
    member = member_with(500)
    redemption = redeem_reward(member=member, reward=RewardFactory(), idempotency_key="c1")
    response = api.post(f"{API}/redemptions/{redemption.pk}/cancel/", {}, format="json")
    assert response.status_code == 400 and "reason" in response.json()
    redemption.refresh_from_db()
    assert redemption.status == "completed"


def test_cancel_unknown_redemption_is_404(api):
    response = api.post(f"{API}/redemptions/999999/cancel/", {"reason": "x"}, format="json")
    assert response.status_code == 404


# -- earning rules, tiers, plans -------------------------------------------------------------


def test_earning_rule_crud(marketer_api):
    mkt = get_user_model().objects.get(username="mkt")
    give(mkt, "rewards.delete_earningrule")
    created = marketer_api.post(
        f"{API}/earning-rules/",
        {"name": "Reviews", "kind": "fixed", "event_type": "review", "points": 50},
        format="json",
    )
    assert created.status_code == 201, created.content
    rule_id = created.json()["id"]
    assert marketer_api.get(f"{API}/earning-rules/").json()["count"] == 1
    patched = marketer_api.patch(
        f"{API}/earning-rules/{rule_id}/", {"points": 75, "is_active": False}, format="json"
    )
    assert patched.status_code == 200, patched.content
    assert EarningRule.objects.get(pk=rule_id).points == 75
    assert marketer_api.delete(f"{API}/earning-rules/{rule_id}/").status_code == 204
    assert not EarningRule.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "fixed", "points": 10}, "event_type"),
        ({"kind": "fixed", "event_type": "review"}, "points"),
        ({"kind": "purchase", "points_per_unit": "0"}, "points_per_unit"),
        ({"kind": "purchase", "points": 5}, "points"),
        ({"kind": "multiplier", "factor": "1.00"}, "factor"),
        ({"kind": "multiplier", "factor": "-2"}, "factor"),
        (
            {
                "kind": "purchase",
                "active_from": "2030-01-02T00:00:00Z",
                "active_until": "2030-01-01T00:00:00Z",
            },
            "active_until",
        ),
        ({"kind": "purchase", "max_count_per_day": -1}, "max_count_per_day"),
    ],
)
def test_bad_earning_rule_is_400_naming_the_field(marketer_api, body, field):
    response = marketer_api.post(f"{API}/earning-rules/", {"name": "Rule", **body}, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not EarningRule.objects.exists()


def test_earning_rule_patch_is_checked_against_what_is_stored(marketer_api):
    rule = EarningRuleFactory(active_from=timezone.now())
    response = marketer_api.patch(
        f"{API}/earning-rules/{rule.pk}/",
        {"active_until": (rule.active_from - timedelta(days=1)).isoformat()},
        format="json",
    )
    assert response.status_code == 400 and "active_until" in response.json()


def test_tier_crud(marketer_api):
    mkt = get_user_model().objects.get(username="mkt")
    give(mkt, "rewards.delete_tier")
    created = marketer_api.post(
        f"{API}/tiers/",
        {"name": "Silver", "rank": 2, "points_threshold": 1000, "earn_multiplier": "1.25"},
        format="json",
    )
    assert created.status_code == 201, created.content
    tier_id = created.json()["id"]
    assert marketer_api.get(f"{API}/tiers/{tier_id}/").json()["name"] == "Silver"
    renamed = marketer_api.put(
        f"{API}/tiers/{tier_id}/",
        {"name": "Zilver", "rank": 2, "points_threshold": 1200},
        format="json",
    )
    assert renamed.status_code == 200, renamed.content
    assert Tier.objects.get(pk=tier_id).points_threshold == 1200
    assert marketer_api.delete(f"{API}/tiers/{tier_id}/").status_code == 204


def test_tier_thresholds_must_rise_with_rank(marketer_api):
    TierFactory(name="Bronze", rank=1, points_threshold=0)
    silver = TierFactory(name="Silver", rank=3, points_threshold=1000)

    below = marketer_api.post(
        f"{API}/tiers/", {"name": "Gold", "rank": 5, "points_threshold": 900}, format="json"
    )
    assert below.status_code == 400 and "points_threshold" in below.json()
    between = marketer_api.post(
        f"{API}/tiers/", {"name": "Steel", "rank": 2, "points_threshold": 1000}, format="json"
    )
    assert between.status_code == 400 and "points_threshold" in between.json()
    fine = marketer_api.post(
        f"{API}/tiers/", {"name": "Steel", "rank": 2, "points_threshold": 500}, format="json"
    )
    assert fine.status_code == 201, fine.content
    lowered = marketer_api.patch(
        f"{API}/tiers/{silver.pk}/", {"points_threshold": 400}, format="json"
    )
    assert lowered.status_code == 400 and "points_threshold" in lowered.json()
    assert Tier.objects.get(pk=silver.pk).points_threshold == 1000


def test_tier_thresholds_are_checked_on_spend_when_tiers_go_by_spend(marketer_api, program):
    program.tier_basis = TierBasis.SPEND
    program.save()
    TierFactory(name="Bronze", rank=1, spend_threshold=Decimal("100"))
    response = marketer_api.post(
        f"{API}/tiers/",
        {"name": "Silver", "rank": 2, "points_threshold": 5000, "spend_threshold": "50"},
        format="json",
    )
    assert response.status_code == 400 and "spend_threshold" in response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rank": 1}, "rank"),
        ({"name": "Bronze"}, "name"),
        ({"earn_multiplier": "0.5"}, "earn_multiplier"),
        ({"points_threshold": -1}, "points_threshold"),
    ],
)
def test_bad_tier_is_400_naming_the_field(marketer_api, body, field):
    TierFactory(name="Bronze", rank=1, points_threshold=0)
    payload = {"name": "Gold", "rank": 9, "points_threshold": 5000, **body}
    response = marketer_api.post(f"{API}/tiers/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_plan_crud_and_a_plan_in_use_cannot_be_deleted(marketer_api):
    mkt = get_user_model().objects.get(username="mkt")
    give(mkt, "rewards.delete_membershipplan")
    created = marketer_api.post(
        f"{API}/plans/",
        {"name": "Plus", "price": "4.99", "billing_period_months": 1, "trial_days": 14},
        format="json",
    )
    assert created.status_code == 201, created.content
    plan_id = created.json()["id"]
    assert created.json()["currency"] == "EUR"
    patched = marketer_api.patch(f"{API}/plans/{plan_id}/", {"price": "5.99"}, format="json")
    assert patched.status_code == 200 and patched.json()["price"] == "5.99"
    subscribe(member=MemberFactory(), plan=MembershipPlan.objects.get(pk=plan_id))
    in_use = marketer_api.delete(f"{API}/plans/{plan_id}/")
    assert in_use.status_code == 409 and in_use.json()["code"] == "in_use"
    unused = MembershipPlanFactory()
    assert marketer_api.delete(f"{API}/plans/{unused.pk}/").status_code == 204


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"price": "0"}, "price"),
        ({"price": "-1.00"}, "price"),
        ({"price": "1.001"}, "price"),
        ({"currency": "euro"}, "currency"),
        ({"billing_period_months": 0}, "billing_period_months"),
        ({"earn_multiplier": "0.9"}, "earn_multiplier"),
        ({"granted_tier": 999999}, "granted_tier"),
    ],
)
def test_bad_plan_is_400_naming_the_field(marketer_api, body, field):
    payload = {"name": "Plus", "price": "4.99", **body}
    response = marketer_api.post(f"{API}/plans/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_support_cannot_change_program_configuration(api):
    tier = TierFactory()
    assert api.post(f"{API}/tiers/", {"name": "X", "rank": 7}, format="json").status_code == 403
    assert api.patch(f"{API}/tiers/{tier.pk}/", {"perks": "x"}, format="json").status_code == 403
    assert api.get(f"{API}/earning-rules/").status_code == 403
    assert api.post(f"{API}/plans/", {"name": "P", "price": "1"}, format="json").status_code == 403


# -- subscriptions ---------------------------------------------------------------------------


@pytest.fixture
def plan(program):
    return MembershipPlanFactory(
        name="Plus", price=Decimal("4.99"), trial_days=14, renewal_bonus_points=100
    )


def test_subscribe_starts_a_trial_and_a_second_is_409(api, plan):
    member = MemberFactory()
    url = f"{API}/members/{member.pk}/subscriptions/"

    response = api.post(url, {"plan": plan.pk}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "trialing" and response.json()["plan_name"] == "Plus"
    again = api.post(url, {"plan": plan.pk}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "already_subscribed"
    assert Subscription.objects.filter(member=member).count() == 1


def test_subscribe_to_inactive_plan_is_409(api, plan):
    plan.is_active = False
    plan.save()
    member = MemberFactory()
    response = api.post(
        f"{API}/members/{member.pk}/subscriptions/", {"plan": plan.pk}, format="json"
    )
    assert response.status_code == 409 and response.json()["code"] == "plan_unavailable"
    assert not Subscription.objects.exists()


def test_subscribe_to_unknown_plan_is_400(api):
    member = MemberFactory()
    response = api.post(
        f"{API}/members/{member.pk}/subscriptions/", {"plan": 999999}, format="json"
    )
    assert response.status_code == 400 and "plan" in response.json()


def test_list_a_members_subscriptions(api, plan):
    member = MemberFactory()
    sub = subscribe(member=member, plan=plan)
    subscribe(member=MemberFactory(), plan=plan)
    body = api.get(f"{API}/members/{member.pk}/subscriptions/").json()
    assert [s["id"] for s in body["results"]] == [sub.pk]


def renew(api, sub, **body):
    payload = {"amount": "4.99", "payment_ref": "pay-1", **body}
    return api.post(f"{API}/subscriptions/{sub.pk}/renewals/", payload, format="json")


def test_renewal_extends_the_period_and_a_repeat_returns_the_first_payment(api, plan):
    member = MemberFactory()
    sub = subscribe(member=member, plan=plan)
    trial_end = sub.current_period_end

    first = renew(api, sub, payment_ref="pay-1")
    again = renew(api, sub, payment_ref="pay-1")

    assert (first.status_code, again.status_code) == (201, 200), first.content
    assert again.json()["id"] == first.json()["id"]
    assert first.json()["subscription"]["status"] == "active"
    assert first.json()["bonus_points"] is None
    assert SubscriptionPayment.objects.filter(subscription=sub).count() == 1
    sub.refresh_from_db()
    assert sub.current_period_start == trial_end and sub.status == SubscriptionStatus.ACTIVE
    second = renew(api, sub, payment_ref="pay-2")
    assert second.status_code == 201 and second.json()["bonus_points"] == 100
    assert balance(member) == 100


def test_renewal_with_a_payment_of_another_subscription_is_400(api, plan):
    sub = subscribe(member=MemberFactory(), plan=plan)
    other = subscribe(member=MemberFactory(), plan=plan)
    assert renew(api, sub, payment_ref="pay-1").status_code == 201
    response = renew(api, other, payment_ref="pay-1")
    assert response.status_code == 400 and "payment_ref" in response.json()
    assert not other.payments.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-4.99"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"payment_ref": ""}, "payment_ref"),
        ({"paid_at": "2999-01-01T00:00:00Z"}, "paid_at"),
        ({"paid_at": "2001-01-01T00:00:00Z"}, "paid_at"),
        ({"paid_at": "yesterday"}, "paid_at"),
    ],
)
def test_bad_renewal_is_400_naming_the_field(api, plan, body, field):
    sub = subscribe(member=MemberFactory(), plan=plan)
    response = renew(api, sub, **body)
    assert response.status_code == 400
    assert field in response.json()
    assert not SubscriptionPayment.objects.exists()


def test_renewal_of_an_ended_subscription_is_409(api, plan):
    sub = subscribe(member=MemberFactory(), plan=plan)
    api.post(f"{API}/subscriptions/{sub.pk}/cancel/", {"at_period_end": False}, format="json")
    response = renew(api, sub)
    assert response.status_code == 409 and response.json()["code"] == "subscription_not_live"


def test_cancel_subscription_at_period_end_by_default(api, plan):
    sub = subscribe(member=MemberFactory(), plan=plan)
    response = api.post(f"{API}/subscriptions/{sub.pk}/cancel/", {}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["cancel_at_period_end"] is True
    assert response.json()["status"] == "trialing"


def test_cancel_subscription_now_then_again_is_409(api, plan):
    sub = subscribe(member=MemberFactory(), plan=plan)
    url = f"{API}/subscriptions/{sub.pk}/cancel/"
    response = api.post(url, {"at_period_end": False}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = api.post(url, {"at_period_end": False}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "subscription_not_live"


def test_cancel_subscription_with_a_bad_flag_is_400(api, plan):
    sub = subscribe(member=MemberFactory(), plan=plan)
    response = api.post(
        f"{API}/subscriptions/{sub.pk}/cancel/", {"at_period_end": "maybe"}, format="json"
    )
    assert response.status_code == 400 and "at_period_end" in response.json()
    sub.refresh_from_db()
    assert not sub.cancel_at_period_end


# -- who may call what -----------------------------------------------------------------------


@pytest.fixture
def endpoints(program):
    """(method, url, body) for every rewards endpoint, with real objects behind the ids."""
    member = member_with(500)
    reward = RewardFactory(points_cost=100)
    redemption = redeem_reward(member=member, reward=reward, idempotency_key="e1")
    plan = MembershipPlanFactory(trial_days=0)
    sub = subscribe(member=member, plan=plan)
    tier = TierFactory(name="Bronze", rank=1)
    rule = EarningRuleFactory()
    m = f"{API}/members/{member.pk}"
    return [
        ("get", f"{m}/balance/", None),
        ("get", f"{m}/transactions/", None),
        ("post", f"{m}/adjustments/", {"points": 5, "reason": "x", "idempotency_key": "e"}),
        ("get", f"{API}/rewards/", None),
        ("get", f"{API}/rewards/{reward.pk}/", None),
        ("post", f"{API}/rewards/", {"name": "R", "kind": "free_product", "points_cost": 5}),
        ("get", f"{m}/redemptions/", None),
        ("post", f"{m}/redemptions/", {"reward": reward.pk, "idempotency_key": "e2"}),
        ("post", f"{API}/redemptions/{redemption.pk}/cancel/", {"reason": "x"}),
        ("get", f"{API}/earning-rules/", None),
        ("get", f"{API}/earning-rules/{rule.pk}/", None),
        ("patch", f"{API}/earning-rules/{rule.pk}/", {"name": "Renamed"}),
        ("delete", f"{API}/earning-rules/{rule.pk}/", None),
        ("get", f"{API}/tiers/", None),
        ("post", f"{API}/tiers/", {"name": "Gold", "rank": 3, "points_threshold": 9}),
        ("delete", f"{API}/tiers/{tier.pk}/", None),
        ("get", f"{API}/plans/", None),
        ("put", f"{API}/plans/{plan.pk}/", {"name": "P", "price": "2.00"}),
        ("get", f"{m}/subscriptions/", None),
        ("post", f"{m}/subscriptions/", {"plan": plan.pk}),
        ("post", f"{API}/subscriptions/{sub.pk}/renewals/", {"amount": "1", "payment_ref": "p"}),
        ("post", f"{API}/subscriptions/{sub.pk}/cancel/", {}),
    ]


def call(client, method, url, body):
    return (
        getattr(client, method)(url, body, format="json") if body else getattr(client, method)(url)
    )


def ledger_rows() -> int:
    return PointsTransaction.objects.count()


def test_every_endpoint_needs_a_key(endpoints):
    client = APIClient()
    for method, url, body in endpoints:
        response = call(client, method, url, body)
        assert response.status_code == 401, (method, url, response.status_code)
        assert response["WWW-Authenticate"] == "Api-Key"


def test_a_key_without_permissions_gets_403_everywhere(endpoints):
    client = client_for(get_user_model().objects.create_user(username="no-rights"))
    rows = ledger_rows()
    for method, url, body in endpoints:
        response = call(client, method, url, body)
        assert response.status_code == 403, (method, url, response.status_code)
    assert ledger_rows() == rows


def test_a_members_own_session_gets_403_everywhere(endpoints):
    member = MemberFactory(password="pw-123-long-enough")
    client = APIClient()
    client.force_login(member.user)
    rows = ledger_rows()
    for method, url, body in endpoints:
        response = call(client, method, url, body)
        assert response.status_code == 403, (method, url, response.status_code)
    assert ledger_rows() == rows


def test_a_superuser_key_reaches_every_endpoint(endpoints):
    """The other side of the 403 tests: with every permission nothing is refused."""
    admin = get_user_model().objects.create_superuser("root", "root@example.com", None)
    client = client_for(admin)
    for method, url, body in endpoints:
        response = call(client, method, url, body)
        assert response.status_code not in (401, 403, 404, 500), (method, url, response.content)


READ_RIGHTS = [
    f"rewards.view_{model}"
    for model in (
        "pointsaccount",
        "pointstransaction",
        "reward",
        "redemption",
        "earningrule",
        "tier",
        "membershipplan",
        "subscription",
        "subscriptionpayment",
    )
]


def test_a_key_with_read_rights_reads_everything_and_writes_nothing(endpoints):
    user = get_user_model().objects.create_user(username="reader")
    give(user, *READ_RIGHTS)
    client = client_for(user)
    rows = ledger_rows()
    for method, url, body in endpoints:
        response = call(client, method, url, body)
        expected = 200 if method == "get" else 403
        assert response.status_code == expected, (method, url, response.status_code)
    assert ledger_rows() == rows


def test_support_role_has_what_the_api_needs(db):
    """Support (and the integrations whose keys use it) redeems and manages paid plans."""
    support = set(
        Group.objects.get(name=SUPPORT)
        .permissions.filter(content_type__app_label="rewards")
        .values_list("codename", flat=True)
    )
    assert {
        "view_pointsaccount",
        "view_pointstransaction",
        "add_pointstransaction",
        "view_reward",
        "view_redemption",
        "add_redemption",
        "change_redemption",
        "view_subscription",
        "add_subscription",
        "change_subscription",
        "add_subscriptionpayment",
    } <= support


def test_schema_documents_the_rewards_endpoints(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    for path in (
        b"/api/v1/members/{member_id}/balance/",
        b"/api/v1/members/{member_id}/adjustments/",
        b"/api/v1/members/{member_id}/redemptions/",
        b"/api/v1/redemptions/{id}/cancel/",
        b"/api/v1/subscriptions/{id}/renewals/",
        b"/api/v1/earning-rules/{id}/",
        b"/api/v1/tiers/",
        b"/api/v1/plans/",
    ):
        assert path in schema.content, path
