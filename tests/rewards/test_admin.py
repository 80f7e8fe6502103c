"""The rewards admin: validated configuration forms, the rule simulator, support's points
adjustment, the cancel-redemption action, read-only ledger lists and the member page sections."""

from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rewards.models import (
    EarningRule,
    EarningRuleKind,
    MembershipPlan,
    PointsBucket,
    PointsTransaction,
    Purchase,
    Redemption,
    RedemptionStatus,
    Reward,
    RewardCode,
    RewardKind,
    RuleAward,
    Tier,
    TierBasis,
    TransactionKind,
)
from rewards.services import (
    add_reward_codes,
    adjust_points,
    award_points,
    redeem_reward,
    set_member_tier,
    subscribe,
)
from tests.conftest import make_staff

from .factories import (
    EarningRuleFactory,
    MemberFactory,
    MembershipPlanFactory,
    RewardFactory,
    TierFactory,
)
from .helpers import balance

pytestmark = pytest.mark.django_db

LIMIT_FIELDS = [
    f"max_{what}_{period}"
    for what in ("count", "points")
    for period in ("per_day", "per_week", "per_month", "lifetime")
]


def errors_of(response) -> dict:
    assert response.status_code == 200, response.status_code
    return response.context["adminform"].form.errors


def rule_data(**overrides) -> dict:
    data = {
        "name": "Rule",
        "kind": EarningRuleKind.PURCHASE,
        "is_active": "on",
        "event_type": "",
        "points_per_unit": "1",
        "min_amount": "",
        "points": "",
        "factor": "",
        "channel": "",
        "touchpoint": "",
        "product_category": "",
        "sku": "",
        "tier": "",
        "plan": "",
        "active_from_0": "",
        "active_from_1": "",
        "active_until_0": "",
        "active_until_1": "",
        "priority": "0",
        "stackable": "on",
        **dict.fromkeys(LIMIT_FIELDS, ""),
    }
    data.update(overrides)
    return data


def tier_data(**overrides) -> dict:
    data = {
        "name": "Gold",
        "rank": "3",
        "points_threshold": "5000",
        "spend_threshold": "0",
        "earn_multiplier": "1.5",
        "guaranteed_months": "12",
        "perks": "",
    }
    data.update(overrides)
    return data


def reward_data(**overrides) -> dict:
    data = {
        "name": "Tote bag",
        "description": "",
        "kind": RewardKind.FREE_PRODUCT,
        "points_cost": "300",
        "value": "",
        "is_active": "on",
        "active_from_0": "",
        "active_from_1": "",
        "active_until_0": "",
        "active_until_1": "",
        "min_tier": "",
        "stock": "10",
        "per_member_limit": "",
    }
    data.update(overrides)
    return data


def plan_data(**overrides) -> dict:
    data = {
        "name": "Plus",
        "description": "",
        "price": "4.99",
        "currency": "EUR",
        "billing_period_months": "1",
        "trial_days": "0",
        "earn_multiplier": "2",
        "renewal_bonus_points": "0",
        "granted_tier": "",
        "is_active": "on",
    }
    data.update(overrides)
    return data


def member_with(points: int):
    member = MemberFactory()
    award_points(member=member, points=points, reason="seed", idempotency_key=f"seed-{member.pk}")
    return member


# -- program settings ------------------------------------------------------------------------


def test_program_settings_list_goes_straight_to_the_one_row(client, marketer):
    client.force_login(marketer)
    response = client.get("/admin/rewards/programsettings/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/rewards/programsettings/1/change/"
    assert client.get(response["Location"]).status_code == 200
    assert client.get("/admin/rewards/programsettings/add/").status_code == 403
    assert client.get("/admin/rewards/programsettings/1/delete/").status_code == 403


def test_switching_tier_basis_is_refused_when_spend_thresholds_do_not_rise(client, marketer):
    TierFactory(name="Silver", rank=1, points_threshold=0, spend_threshold=Decimal("100"))
    TierFactory(name="Gold", rank=2, points_threshold=1000, spend_threshold=Decimal("100"))
    client.force_login(marketer)
    page = client.get("/admin/rewards/programsettings/1/change/")
    data = {
        name: ("" if value is None else value)
        for name, value in page.context["adminform"].form.initial.items()
    }
    data["tier_basis"] = TierBasis.SPEND
    data["tier_window_months"] = data["tier_window_months"] or ""
    errors = errors_of(client.post("/admin/rewards/programsettings/1/change/", data))
    assert "Gold (rank 2) needs a higher spend threshold" in errors["tier_basis"][0]


# -- earning rules ---------------------------------------------------------------------------


def test_marketer_creates_a_purchase_rule(client, marketer):
    client.force_login(marketer)
    response = client.post(
        "/admin/rewards/earningrule/add/",
        rule_data(name="1 per EUR", points_per_unit="1", min_amount="10"),
    )
    assert response.status_code == 302
    rule = EarningRule.objects.get(name="1 per EUR")
    assert rule.kind == EarningRuleKind.PURCHASE
    assert rule.points_per_unit == 1 and rule.min_amount == 10
    assert rule.points == 0 and rule.factor == 1


def test_fixed_rule_saved_with_neutral_values_in_unused_fields(client, marketer):
    client.force_login(marketer)
    response = client.post(
        "/admin/rewards/earningrule/add/",
        rule_data(
            name="Review", kind="fixed", event_type="review", points="50", points_per_unit=""
        ),
    )
    assert response.status_code == 302
    rule = EarningRule.objects.get(name="Review")
    assert (rule.points, rule.points_per_unit, rule.factor) == (50, 1, 1)
    # Editing it shows the purchase-only field empty, so it saves again unchanged.
    page = client.get(f"/admin/rewards/earningrule/{rule.pk}/change/")
    assert page.context["adminform"].form["points_per_unit"].value() is None


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        (
            {
                "active_from_0": "2025-03-01",
                "active_from_1": "00:00:00",
                "active_until_0": "2025-02-01",
                "active_until_1": "00:00:00",
            },
            "active_until",
            "after its start",
        ),
        ({"points_per_unit": "0"}, "points_per_unit", "above 0"),
        ({"points_per_unit": ""}, "points_per_unit", "above 0"),
        (
            {"kind": "fixed", "event_type": "review", "points": "0", "points_per_unit": ""},
            "points",
            "above 0",
        ),
        ({"kind": "fixed", "points": "10", "points_per_unit": ""}, "event_type", "event type"),
        ({"kind": "multiplier", "factor": "1", "points_per_unit": ""}, "factor", "above 1"),
        ({"kind": "multiplier", "factor": "0.5", "points_per_unit": ""}, "factor", "above 1"),
        ({"points": "50"}, "points", "Leave this empty"),
        ({"factor": "2"}, "factor", "Leave this empty"),
        (
            {"kind": "fixed", "event_type": "review", "points": "5", "points_per_unit": "2"},
            "points_per_unit",
            "Leave this empty",
        ),
        (
            {
                "kind": "fixed",
                "event_type": "review",
                "points": "5",
                "points_per_unit": "",
                "min_amount": "10",
            },
            "min_amount",
            "Leave this empty",
        ),
        (
            {"kind": "multiplier", "factor": "2", "points_per_unit": "", "points": "5"},
            "points",
            "Leave this empty",
        ),
    ],
)
def test_earning_rule_form_refuses_invalid_rules(client, marketer, overrides, field, message):
    client.force_login(marketer)
    errors = errors_of(client.post("/admin/rewards/earningrule/add/", rule_data(**overrides)))
    assert message in " ".join(errors[field])
    assert not EarningRule.objects.exists()


def test_tier_filter_is_refused_on_a_purchase_rule(client, marketer):
    tier = TierFactory()
    client.force_login(marketer)
    errors = errors_of(client.post("/admin/rewards/earningrule/add/", rule_data(tier=tier.pk)))
    assert "Leave this empty" in errors["tier"][0]


def test_earning_rule_list_shows_kind_event_window_priority(client, marketer):
    EarningRuleFactory(name="Spring double", kind="multiplier", factor=2, priority=7)
    client.force_login(marketer)
    page = client.get("/admin/rewards/earningrule/", {"kind__exact": "multiplier"})
    text = page.content.decode()
    assert "Spring double" in text and "always" in text and "column-priority" in text
    assert "Simulate an event" in text


def test_analyst_cannot_change_rules(client, analyst):
    rule = EarningRuleFactory(name="Base")
    client.force_login(analyst)
    assert client.get("/admin/rewards/earningrule/").status_code == 200
    assert client.get("/admin/rewards/earningrule/add/").status_code == 403
    response = client.post(
        f"/admin/rewards/earningrule/{rule.pk}/change/", rule_data(name="Hacked")
    )
    assert response.status_code == 403
    rule.refresh_from_db()
    assert rule.name == "Base"


# -- tiers -----------------------------------------------------------------------------------


@pytest.fixture
def two_tiers(db):
    return (
        TierFactory(name="Bronze", rank=1, points_threshold=0),
        TierFactory(name="Silver", rank=2, points_threshold=1000),
    )


def test_marketer_adds_a_tier_above_the_others(client, marketer, two_tiers):
    client.force_login(marketer)
    response = client.post("/admin/rewards/tier/add/", tier_data())
    assert response.status_code == 302
    assert Tier.objects.get(name="Gold").points_threshold == 5000


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"points_threshold": "500"}, "points_threshold", "Gold (rank 3) needs a higher points"),
        ({"points_threshold": "1000"}, "points_threshold", "needs a higher points threshold"),
        # ranked between Bronze and Silver, but above Silver's threshold
        ({"rank": "0", "points_threshold": "10"}, "points_threshold", "Bronze (rank 1)"),
        ({"earn_multiplier": "0.9"}, "earn_multiplier", "at least 1"),
    ],
)
def test_tier_form_refuses_thresholds_not_rising_with_rank(
    client, marketer, two_tiers, overrides, field, message
):
    client.force_login(marketer)
    errors = errors_of(client.post("/admin/rewards/tier/add/", tier_data(**overrides)))
    assert message in " ".join(errors[field])
    assert not Tier.objects.filter(name="Gold").exists()


def test_tier_edit_is_checked_against_the_other_tiers(client, marketer, two_tiers):
    bronze, _ = two_tiers
    client.force_login(marketer)
    response = client.post(
        f"/admin/rewards/tier/{bronze.pk}/change/",
        tier_data(name="Bronze", rank="1", points_threshold="2000", earn_multiplier="1"),
    )
    assert "Silver (rank 2) needs a higher points" in errors_of(response)["points_threshold"][0]
    bronze.refresh_from_db()
    assert bronze.points_threshold == 0


def test_spend_basis_checks_spend_thresholds(client, marketer, program, two_tiers):
    program.tier_basis = TierBasis.SPEND
    program.save()
    Tier.objects.filter(name="Silver").update(spend_threshold=Decimal("500"))
    client.force_login(marketer)
    errors = errors_of(client.post("/admin/rewards/tier/add/", tier_data(points_threshold="9000")))
    assert "needs a higher spend threshold" in errors["spend_threshold"][0]
    response = client.post(
        "/admin/rewards/tier/add/", tier_data(points_threshold="9000", spend_threshold="900")
    )
    assert response.status_code == 302


# -- rewards and code pools ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"points_cost": "0"}, "points_cost", "above 0"),
        (
            {
                "active_from_0": "2025-05-01",
                "active_from_1": "00:00:00",
                "active_until_0": "2025-05-01",
                "active_until_1": "00:00:00",
            },
            "active_until",
            "after its start",
        ),
        ({"stock": "-1"}, "stock", "greater than or equal to 0"),
        ({"kind": RewardKind.MONEY_OFF, "value": ""}, "value", "above 0"),
    ],
)
def test_reward_form_refuses_invalid_rewards(client, marketer, overrides, field, message):
    client.force_login(marketer)
    errors = errors_of(client.post("/admin/rewards/reward/add/", reward_data(**overrides)))
    assert message in " ".join(errors[field])
    assert not Reward.objects.exists()


def test_marketer_creates_a_reward(client, marketer):
    client.force_login(marketer)
    response = client.post("/admin/rewards/reward/add/", reward_data(stock="0"))
    assert response.status_code == 302
    assert Reward.objects.get().stock == 0


def test_marketer_generates_codes_for_a_coupon_reward(client, marketer):
    reward = RewardFactory(kind=RewardKind.COUPON)
    client.force_login(marketer)
    change = client.get(f"/admin/rewards/reward/{reward.pk}/change/").content.decode()
    assert "0 free of 0 codes" in change and f"/admin/rewards/reward/{reward.pk}/codes/" in change
    response = client.post(
        f"/admin/rewards/reward/{reward.pk}/codes/",
        {"count": "25", "prefix": "SPR-", "_generate": "Generate codes"},
        follow=True,
    )
    assert "Generated 25 codes." in response.content.decode()
    codes = list(RewardCode.objects.filter(reward=reward).values_list("code", flat=True))
    assert len(codes) == 25 and all(code.startswith("SPR-") for code in codes)


def test_code_list_upload_adds_csv_codes_and_skips_duplicates(client, marketer):
    reward = RewardFactory(kind=RewardKind.COUPON)
    add_reward_codes(reward=reward, codes=["OLD1"])
    client.force_login(marketer)
    response = client.post(
        f"/admin/rewards/reward/{reward.pk}/codes/",
        {"codes": "code,batch\nAAA111,spring\nBBB222,spring\nOLD1,x\nAAA111,dup\n\n"},
        follow=True,
    )
    assert "Added 2 codes (1 already in the pool, skipped)." in response.content.decode()
    assert set(reward.codes.values_list("code", flat=True)) == {"OLD1", "AAA111", "BBB222"}


def test_code_file_upload_reads_one_code_per_line(client, marketer):
    from django.core.files.uploadedfile import SimpleUploadedFile

    reward = RewardFactory(kind=RewardKind.COUPON)
    client.force_login(marketer)
    upload = SimpleUploadedFile("codes.txt", b"X1\nX2\nX3\n", content_type="text/plain")
    client.post(f"/admin/rewards/reward/{reward.pk}/codes/", {"codes": "", "file": upload})
    assert reward.codes.count() == 3


def test_code_upload_with_a_bad_line_adds_nothing(client, marketer):
    reward = RewardFactory(kind=RewardKind.COUPON)
    client.force_login(marketer)
    response = client.post(
        f"/admin/rewards/reward/{reward.pk}/codes/",
        {"codes": "GOOD1\nHAS SPACE\n" + "L" * 65 + "\n"},
    )
    text = response.content.decode()
    assert response.status_code == 200
    assert "Line 2: a code cannot contain spaces." in text
    assert "Line 3: the code is longer than 64 characters." in text
    assert reward.codes.count() == 0


def test_codes_are_refused_for_rewards_that_are_not_coupons(client, marketer):
    reward = RewardFactory(kind=RewardKind.FREE_PRODUCT)
    client.force_login(marketer)
    response = client.post(
        f"/admin/rewards/reward/{reward.pk}/codes/", {"count": "5", "_generate": "Generate"}
    )
    assert "Only coupon rewards" in response.content.decode()
    assert reward.codes.count() == 0


def test_analyst_cannot_add_codes(client, analyst):
    reward = RewardFactory(kind=RewardKind.COUPON)
    client.force_login(analyst)
    response = client.post(
        f"/admin/rewards/reward/{reward.pk}/codes/", {"count": "5", "_generate": "Generate"}
    )
    assert response.status_code == 403
    assert reward.codes.count() == 0


# -- membership plans ------------------------------------------------------------------------


@pytest.mark.parametrize("price", ["0", "-1"])
def test_plan_price_must_be_positive(client, marketer, price):
    client.force_login(marketer)
    errors = errors_of(client.post("/admin/rewards/membershipplan/add/", plan_data(price=price)))
    assert "above 0" in errors["price"][0]
    assert not MembershipPlan.objects.exists()


def test_marketer_creates_a_plan(client, marketer):
    client.force_login(marketer)
    assert client.post("/admin/rewards/membershipplan/add/", plan_data()).status_code == 302
    assert MembershipPlan.objects.get().price == Decimal("4.99")


# -- rule simulator --------------------------------------------------------------------------


@pytest.fixture
def rules(db):
    EarningRuleFactory(name="1 per EUR", points_per_unit=Decimal("1"), min_amount=Decimal("10"))
    EarningRuleFactory(
        name="Double weekend",
        kind=EarningRuleKind.MULTIPLIER,
        factor=Decimal("2"),
        event_type="purchase",
    )
    EarningRuleFactory(
        name="Review bonus", kind=EarningRuleKind.FIXED, event_type="review", points=50
    )


def ledger_counts() -> tuple[int, ...]:
    return (
        PointsTransaction.objects.count(),
        PointsBucket.objects.count(),
        Purchase.objects.count(),
        RuleAward.objects.count(),
    )


def simulate(client, **overrides):
    data = {
        "event_type": "purchase",
        "amount": "42.50",
        "currency": "EUR",
        "channel": "",
        "touchpoint": "",
        "order_id": "A-1",
        "occurred_at": "",
        "properties": "",
        **overrides,
    }
    return client.post("/admin/rewards/earningrule/simulate/", data)


def test_simulator_shows_the_breakdown_and_writes_nothing(client, marketer, rules):
    member = member_with(10)
    gold = TierFactory(name="Gold", earn_multiplier=Decimal("1.5"))
    set_member_tier(member=member, tier=gold)
    before = ledger_counts()
    client.force_login(marketer)
    response = simulate(client, member=member.email.upper())
    award = response.context["award"]
    lines = [(line.rule_name, line.points, line.note) for line in award.lines]
    assert lines == [
        ("1 per EUR", 42, "42.50 EUR × 1"),
        ("Double weekend", 42, "×2"),
        ("Gold tier bonus", 21, "×1.5"),
    ]
    assert award.points == 105
    text = response.content.decode()
    assert "Double weekend" in text and "Gold tier bonus" in text
    assert 'data-testid="simulation-total"><strong>105</strong>' in text
    assert ledger_counts() == before
    assert balance(member) == 10


def test_simulator_finds_the_member_by_number_and_uses_event_details(client, marketer, rules):
    member = MemberFactory()
    client.force_login(marketer)
    response = simulate(
        client, member=member.member_number, event_type="review", amount="", properties="{}"
    )
    assert [(line.rule_name, line.points) for line in response.context["award"].lines] == [
        ("Review bonus", 50)
    ]
    below_minimum = simulate(client, member=member.member_number, amount="9.99")
    assert below_minimum.context["award"].points == 0
    assert "No rule matches this event." in below_minimum.content.decode()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"member": "nobody@example.com"}, "member", "No member has this number or email."),
        ({"properties": "{not json"}, "properties", "Not valid JSON"),
        ({"properties": "[1, 2]"}, "properties", "must be a JSON object"),
        ({"amount": ""}, "amount", "A purchase needs an amount."),
        ({"amount": "abc"}, "amount", "Enter a number."),
        ({"currency": "EURO"}, "currency", "at most 3"),
        ({"event_type": "Buy Now"}, "event_type", "lower-case"),
        ({"occurred_at": "yesterday"}, "occurred_at", "Enter a valid date/time."),
    ],
)
def test_simulator_shows_form_errors(client, marketer, rules, overrides, field, message):
    member = MemberFactory()
    client.force_login(marketer)
    response = simulate(client, **{"member": member.email, **overrides})
    assert response.status_code == 200
    assert response.context["award"] is None
    assert message in " ".join(response.context["form"].errors[field])


def test_simulator_is_linked_from_the_rule_list_and_needs_rule_permission(client, marketer):
    member = MemberFactory()
    client.force_login(marketer)
    assert (
        "/admin/rewards/earningrule/simulate/"
        in client.get("/admin/rewards/earningrule/").content.decode()
    )
    client.force_login(make_staff("nobody"))
    response = simulate(client, member=member.email)
    assert response.status_code == 403


# -- support adjusts points ------------------------------------------------------------------


def adjust_form(client, member):
    page = client.get("/admin/rewards/pointstransaction/adjust/", {"member": member.member_number})
    assert page.status_code == 200
    form = page.context["form"]
    assert form["member"].value() == member.member_number
    return {"member": member.member_number, "idempotency_key": form["idempotency_key"].value()}


def test_adjust_points_requires_a_reason(client, support):
    member = member_with(100)
    client.force_login(support)
    data = {**adjust_form(client, member), "points": "50", "reason": "   "}
    response = client.post("/admin/rewards/pointstransaction/adjust/", data)
    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    assert not PointsTransaction.objects.filter(kind=TransactionKind.ADJUST).exists()


def test_adjust_points_refuses_zero(client, support):
    member = member_with(100)
    client.force_login(support)
    data = {**adjust_form(client, member), "points": "0", "reason": "Goodwill"}
    response = client.post("/admin/rewards/pointstransaction/adjust/", data)
    assert "other than 0" in response.context["form"].errors["points"][0]


def test_adjust_points_creates_one_ledger_row_with_actor_and_reason(client, support):
    member = member_with(100)
    client.force_login(support)
    data = {**adjust_form(client, member), "points": "250", "reason": "Missing store purchase"}
    response = client.post("/admin/rewards/pointstransaction/adjust/", data)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/members/member/{member.pk}/change/"
    row = PointsTransaction.objects.get(kind=TransactionKind.ADJUST)
    assert (row.member_id, row.points, row.actor, row.reason) == (
        member.pk,
        250,
        support,
        "Missing store purchase",
    )
    assert balance(member) == 350
    listing = client.get("/admin/rewards/pointstransaction/", {"q": member.member_number})
    text = listing.content.decode()
    assert "Missing store purchase" in text and "support" in text


def test_double_submit_of_the_same_form_adjusts_once(client, support):
    member = member_with(100)
    client.force_login(support)
    data = {**adjust_form(client, member), "points": "-40", "reason": "Returned item"}
    first = client.post("/admin/rewards/pointstransaction/adjust/", data)
    second = client.post("/admin/rewards/pointstransaction/adjust/", data, follow=True)
    assert first.status_code == 302
    assert "already submitted" in second.content.decode()
    assert PointsTransaction.objects.filter(kind=TransactionKind.ADJUST).count() == 1
    assert balance(member) == 60


def test_each_form_render_gets_its_own_key(client, support):
    member = member_with(100)
    client.force_login(support)
    first = adjust_form(client, member)["idempotency_key"]
    second = adjust_form(client, member)["idempotency_key"]
    assert first != second and first.startswith("admin-adjust:")
    for key in (first, second):
        client.post(
            "/admin/rewards/pointstransaction/adjust/",
            {"member": member.email, "idempotency_key": key, "points": "5", "reason": "Goodwill"},
        )
    assert balance(member) == 110


def test_adjust_points_reports_insufficient_points_as_a_form_error(client, support):
    member = member_with(30)
    client.force_login(support)
    data = {**adjust_form(client, member), "points": "-31", "reason": "Fraud"}
    response = client.post("/admin/rewards/pointstransaction/adjust/", data)
    assert response.status_code == 200
    error = response.context["form"].errors["points"][0]
    assert "does not have enough points" in error and "balance is 30" in error
    assert balance(member) == 30
    assert not PointsTransaction.objects.filter(kind=TransactionKind.ADJUST).exists()


def test_adjust_points_refuses_a_forged_key(client, support):
    member = member_with(30)
    client.force_login(support)
    response = client.post(
        "/admin/rewards/pointstransaction/adjust/",
        {
            "member": member.email,
            "idempotency_key": f"seed-{member.pk}",
            "points": "5",
            "reason": "x",
        },
    )
    assert "out of date" in response.context["form"].errors["idempotency_key"][0]
    assert balance(member) == 30


@pytest.mark.parametrize("role", ["marketer", "analyst"])
def test_only_support_may_adjust_points(client, request, role):
    member = member_with(30)
    client.force_login(request.getfixturevalue(role))
    assert client.get("/admin/rewards/pointstransaction/adjust/").status_code == 403
    response = client.post(
        "/admin/rewards/pointstransaction/adjust/",
        {
            "member": member.email,
            "idempotency_key": "admin-adjust:" + "0" * 32,
            "points": "5",
            "reason": "x",
        },
    )
    assert response.status_code == 403
    assert balance(member) == 30


def test_ledger_is_read_only_even_for_support(client, support):
    member = member_with(30)
    row = PointsTransaction.objects.get(member=member)
    client.force_login(support)
    listing = client.get("/admin/rewards/pointstransaction/").content.decode()
    assert "Adjust points" in listing
    assert client.get("/admin/rewards/pointstransaction/add/").status_code == 403
    response = client.post(
        f"/admin/rewards/pointstransaction/{row.pk}/change/", {"points": "9999", "reason": "x"}
    )
    assert response.status_code == 403
    assert client.post(f"/admin/rewards/pointstransaction/{row.pk}/delete/").status_code == 403
    row.refresh_from_db()
    assert row.points == 30


def test_points_account_list_links_to_the_adjustment(client, support):
    member = member_with(30)
    client.force_login(support)
    text = client.get("/admin/rewards/pointsaccount/", {"q": member.email}).content.decode()
    assert f"/admin/rewards/pointstransaction/adjust/?member={member.member_number}" in text


# -- redemptions -----------------------------------------------------------------------------


@pytest.fixture
def redemption(db):
    member = member_with(500)
    reward = RewardFactory(points_cost=300, stock=5)
    return redeem_reward(member=member, reward=reward, idempotency_key="admin-test")


def test_redemptions_are_found_by_member_number_email_and_code(client, support, redemption):
    other = redeem_reward(
        member=member_with(500), reward=RewardFactory(points_cost=100), idempotency_key="other"
    )
    client.force_login(support)
    for query in (redemption.member.member_number, redemption.member.email, redemption.code):
        text = client.get("/admin/rewards/redemption/", {"q": query}).content.decode()
        assert redemption.code in text and other.code not in text


def test_cancel_action_asks_for_a_reason_then_returns_the_points(client, support, redemption):
    member = redemption.member
    client.force_login(support)
    chosen = {"action": "cancel_selected", "_selected_action": [redemption.pk]}
    ask = client.post("/admin/rewards/redemption/", chosen)
    assert ask.status_code == 200
    assert "admin/rewards/redemption/cancel_confirmation.html" in [t.name for t in ask.templates]
    no_reason = client.post("/admin/rewards/redemption/", {**chosen, "confirm": "yes"})
    assert "reason" in no_reason.context["form"].errors
    redemption.refresh_from_db()
    assert redemption.status == RedemptionStatus.COMPLETED and balance(member) == 200

    done = client.post(
        "/admin/rewards/redemption/",
        {**chosen, "confirm": "yes", "reason": "Customer changed their mind"},
        follow=True,
    )
    assert "1 redemption(s) cancelled" in done.content.decode()
    redemption.refresh_from_db()
    assert redemption.status == RedemptionStatus.CANCELLED
    assert redemption.cancelled_by == support
    assert redemption.cancel_reason == "Customer changed their mind"
    assert balance(member) == 500
    refund = redemption.refund_transaction
    assert refund.points == 300 and refund.actor == support
    assert "Customer changed their mind" in refund.reason
    assert Reward.objects.get(pk=redemption.reward_id).stock == 5


def test_cancelling_twice_refunds_once(client, support, redemption):
    client.force_login(support)
    data = {
        "action": "cancel_selected",
        "_selected_action": [redemption.pk],
        "confirm": "yes",
        "reason": "Duplicate",
    }
    client.post("/admin/rewards/redemption/", data)
    again = client.post("/admin/rewards/redemption/", data, follow=True)
    assert "already cancelled" in again.content.decode()
    assert balance(redemption.member) == 500
    assert PointsTransaction.objects.filter(kind=TransactionKind.REVERSE).count() == 1


def test_analyst_cannot_cancel_redemptions(client, analyst, redemption):
    client.force_login(analyst)
    client.post(
        "/admin/rewards/redemption/",
        {
            "action": "cancel_selected",
            "_selected_action": [redemption.pk],
            "confirm": "yes",
            "reason": "x",
        },
    )
    redemption.refresh_from_db()
    assert redemption.status == RedemptionStatus.COMPLETED
    assert client.post(f"/admin/rewards/redemption/{redemption.pk}/change/", {}).status_code == 403


def test_redemption_cannot_be_edited_or_deleted_through_the_form(client, support, redemption):
    client.force_login(support)
    assert client.get(f"/admin/rewards/redemption/{redemption.pk}/change/").status_code == 200
    response = client.post(
        f"/admin/rewards/redemption/{redemption.pk}/change/",
        {"status": "cancelled", "points": "1", "code": "HACK"},
    )
    assert response.status_code == 403
    redemption.refresh_from_db()
    assert (redemption.status, redemption.points, redemption.code) != ("cancelled", 1, "HACK")
    assert client.get("/admin/rewards/redemption/add/").status_code == 403
    assert client.post(f"/admin/rewards/redemption/{redemption.pk}/delete/").status_code == 403
    assert Redemption.objects.filter(pk=redemption.pk).exists()


# -- subscriptions and referrals -------------------------------------------------------------


def test_subscriptions_list_filters_by_status_and_shows_events(client, support):
    plan = MembershipPlanFactory(name="Plus", trial_days=14)
    trialing = subscribe(member=MemberFactory(), plan=plan)
    active = subscribe(member=MemberFactory(), plan=MembershipPlanFactory(trial_days=0))
    client.force_login(support)
    text = client.get("/admin/rewards/subscription/", {"status__exact": "trialing"}).content
    text = text.decode()
    assert trialing.member.member_number in text and active.member.member_number not in text
    detail = client.get(f"/admin/rewards/subscription/{trialing.pk}/change/").content.decode()
    assert "trial started" in detail
    assert client.get("/admin/rewards/subscription/add/").status_code == 403


def test_referrals_are_listed_read_only(client, support):
    from rewards.services import record_referral

    referrer = MemberFactory()
    referee = MemberFactory(referral_code=referrer.referral_code)
    referral = record_referral(referee=referee)
    client.force_login(support)
    text = client.get("/admin/rewards/referral/").content.decode()
    assert referee.member_number in text
    assert client.get("/admin/rewards/referral/add/").status_code == 403
    response = client.post(f"/admin/rewards/referral/{referral.pk}/change/", {"status": "x"})
    assert response.status_code == 403


# -- the member's admin page -----------------------------------------------------------------


def test_member_page_shows_points_account_latest_transactions_redemptions_and_plan(client, support):
    member = member_with(1000)
    for n in range(1, 25):
        adjust_points(
            member=member, points=1, reason=f"note-{n:02d}", actor=None, idempotency_key=f"n{n}"
        )
    redemption = redeem_reward(
        member=member,
        reward=RewardFactory(name="Cinema ticket", points_cost=100),
        idempotency_key="cinema",
    )
    subscribe(member=member, plan=MembershipPlanFactory(name="Plus Club"))
    client.force_login(support)
    text = client.get(f"/admin/members/member/{member.pk}/change/").content.decode()
    assert "Points account" in text and "924" in text  # 1000 + 24 - 100
    assert "note-24" in text and "note-06" in text
    assert "note-05" not in text and "seed" not in text  # only the latest 20 rows
    assert redemption.code in text and "Cinema ticket" in text
    assert "Plus Club" in text
    assert f"/admin/rewards/pointstransaction/adjust/?member={member.member_number}" in text
    assert f"/admin/rewards/pointstransaction/?member__id__exact={member.pk}" in text


def test_member_page_without_points_still_offers_the_adjustment(client, support, marketer):
    member = MemberFactory()
    client.force_login(support)
    text = client.get(f"/admin/members/member/{member.pk}/change/").content.decode()
    assert f"/admin/rewards/pointstransaction/adjust/?member={member.member_number}" in text
    client.force_login(marketer)
    text = client.get(f"/admin/members/member/{member.pk}/change/").content.decode()
    assert "/admin/rewards/pointstransaction/adjust/" not in text


def test_member_page_queries_do_not_grow_with_the_ledger(client, support):
    few = member_with(10)
    many = member_with(10)
    for n in range(30):
        adjust_points(member=many, points=1, reason="x", actor=support, idempotency_key=f"m{n}")
    client.force_login(support)
    client.get(f"/admin/members/member/{few.pk}/change/")  # warm caches (content types, session)
    counts = []
    for member in (few, many):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/admin/members/member/{member.pk}/change/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


class _FormValues(HTMLParser):
    """The values a browser would submit from the page's main form."""

    def __init__(self):
        super().__init__()
        self.values: list[tuple[str, str]] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "checkbox"):
            self.values.append((name, a.get("value") or ""))
        elif tag == "input" and name and "checked" in a:
            self.values.append((name, a.get("value") or "on"))
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.values.append((self._select, a.get("value") or ""))
        elif tag == "textarea" and name:
            self._textarea = name
            self.values.append((name, ""))

    def handle_data(self, data):
        if self._textarea:
            name, value = self.values[-1]
            self.values[-1] = (name, value + data)

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def test_support_can_still_save_a_member_with_the_points_sections(client, support):
    member = member_with(100)
    adjust_points(member=member, points=5, reason="x", actor=support, idempotency_key="k1")
    client.force_login(support)
    url = f"/admin/members/member/{member.pk}/change/"
    parser = _FormValues()
    parser.feed(client.get(url).content.decode())
    data: dict[str, list[str]] = {}
    for name, value in parser.values:
        if name != "_selected_action":
            data.setdefault(name, []).append(value)
    data["city"] = ["Utrecht"]
    data.pop("csrfmiddlewaretoken", None)
    response = client.post(url, {k: v if len(v) > 1 else v[0] for k, v in data.items()})
    assert response.status_code == 302, response.context["adminform"].form.errors
    member.refresh_from_db()
    assert member.city == "Utrecht"
    assert balance(member) == 105


def test_marketer_sees_the_outcome_lists_read_only(client, marketer, redemption):
    client.force_login(marketer)
    for url in (
        "/admin/rewards/redemption/",
        "/admin/rewards/subscription/",
        "/admin/rewards/referral/",
    ):
        assert client.get(url).status_code == 200, url
    client.post(
        "/admin/rewards/redemption/",
        {
            "action": "cancel_selected",
            "_selected_action": [redemption.pk],
            "confirm": "yes",
            "reason": "x",
        },
    )
    redemption.refresh_from_db()
    assert redemption.status == RedemptionStatus.COMPLETED
    assert client.get("/admin/rewards/pointstransaction/").status_code == 403
