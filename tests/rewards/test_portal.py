import re
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from members.services import suspend_member
from rewards.models import (
    ExpiryPolicy,
    PointsTransaction,
    Redemption,
    RewardKind,
    Subscription,
    SubscriptionStatus,
)
from rewards.services import add_reward_codes, award_points, redeem_reward, spend_points, subscribe

from .factories import MemberFactory, MembershipPlanFactory, RewardFactory, TierFactory
from .helpers import assert_consistent, balance

pytestmark = pytest.mark.django_db

PW = "pw-for-rewards-portal-1"


def member_with(points: int, **kwargs):
    member = MemberFactory(password=PW, **kwargs)
    if points:
        award_points(
            member=member, points=points, reason="Welcome", idempotency_key=f"w{member.pk}"
        )
    return member


def logged_in(client, member):
    client.force_login(member.user)
    return client


def text(response) -> str:
    return response.content.decode()


def confirm_key(response) -> str:
    """The idempotency key the confirm page put in its hidden field."""
    found = re.search(r'name="idempotency_key" value="([^"]+)"', text(response))
    assert found, "the confirm page has no idempotency key"
    return found.group(1)


# -- access --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/portal/points/",
        "/portal/rewards/",
        "/portal/rewards/1/redeem/",
        "/portal/my-rewards/",
        "/portal/my-rewards/1/",
        "/portal/membership/",
        "/portal/membership/join/1/",
        "/portal/membership/cancel/",
    ],
)
def test_rewards_pages_require_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login"))


def test_staff_without_a_member_is_refused(client, marketer):
    client.force_login(marketer)
    assert client.get(reverse("rewards:catalogue")).status_code == 403


def test_redeem_and_plan_posts_are_csrf_protected(program):
    member = member_with(500)
    reward = RewardFactory(points_cost=100)
    plan = MembershipPlanFactory()
    strict = logged_in(Client(enforce_csrf_checks=True), member)
    redeem = strict.post(
        reverse("rewards:redeem", args=[reward.pk]), {"idempotency_key": str(uuid.uuid4())}
    )
    join = strict.post(reverse("rewards:join", args=[plan.pk]), {"accept": "on"})
    assert redeem.status_code == 403 and join.status_code == 403
    assert not Redemption.objects.exists() and not Subscription.objects.exists()


def test_nav_links_to_the_rewards_pages(client, program):
    page = text(logged_in(client, member_with(0)).get(reverse("portal:home")))
    for name in ("history", "catalogue", "my_rewards", "membership"):
        assert f'href="{reverse(f"rewards:{name}")}"' in page


# -- home cards ----------------------------------------------------------------------------------


def test_home_shows_balance_pending_tier_progress_and_expiring_points_in_program_time(
    client, program
):
    program.points_name = "stars"
    program.timezone = "Pacific/Auckland"
    program.expiry_policy = ExpiryPolicy.ROLLING_MONTHS
    program.expiry_months = 1
    program.save()
    TierFactory(name="Bronze", rank=1, points_threshold=0)
    TierFactory(name="Gold", rank=2, points_threshold=1000)
    nz = ZoneInfo("Pacific/Auckland")
    # 00:30 on 10 March in Auckland is still 9 March in UTC; so is the expiry a month later.
    earned = datetime(2025, 3, 10, 0, 30, tzinfo=nz)
    with time_machine.travel(earned, tick=False):
        member = member_with(400)
        member_with(777)
        program.pending_days = 30
        program.save()
        award_points(member=member, points=70, reason="Order", idempotency_key="pending-1")
        page = text(logged_in(client, member).get(reverse("portal:home")))

    assert re.search(r'data-testid="points-balance">400<', page)
    assert re.search(r'data-testid="points-pending">70 stars pending', page)
    assert "Bronze" in page
    assert "600 stars to Gold" in page
    assert 'role="progressbar"' in page and 'aria-valuenow="40"' in page
    assert 'aria-valuemin="0"' in page and 'aria-valuemax="100"' in page
    assert "progress-step-8" in page
    assert "400 stars</strong> expire on" in page
    assert "10 April 2025" in page and "9 April 2025" not in page
    assert "777" not in page  # someone else's balance


def test_home_of_a_member_at_the_top_tier_has_no_progress_bar(client, program):
    TierFactory(name="Solo", rank=1, points_threshold=0)
    page = text(logged_in(client, member_with(50)).get(reverse("portal:home")))
    assert "highest tier" in page and 'role="progressbar"' not in page
    assert "expire in the next 90 days" in page


# -- history -------------------------------------------------------------------------------------


def test_history_shows_own_ledger_newest_first_paginated_in_program_time(client, program):
    program.timezone = "America/New_York"
    program.save()
    member = member_with(0)
    other = member_with(0)
    award_points(member=other, points=5, reason="Someone else's order", idempotency_key="o1")
    # 03:00 UTC on 15 January is 22:00 on 14 January in New York.
    with time_machine.travel(datetime(2025, 1, 15, 3, 0, tzinfo=UTC), tick=False):
        for n in range(29):
            award_points(member=member, points=10, reason=f"Order {n}", idempotency_key=f"a{n}")
        spend_points(member=member, points=40, reason="Coffee", idempotency_key="spend-1")
    logged_in(client, member)

    first = text(client.get(reverse("rewards:history")))
    second = text(client.get(reverse("rewards:history"), {"page": 2}))

    assert first.count("<tr>") - 1 == 25 and second.count("<tr>") - 1 == 5
    assert "Page 1 of 2" in first and 'href="?page=2"' in first
    coffee = re.search(r"Coffee.*?</tr>", first, re.S).group(0)
    assert ">-40<" in coffee and ">250<" in coffee  # 290 - 40
    assert ">+10<" in first
    assert "14 Jan 2025, 22:00" in first and "15 Jan 2025" not in first
    assert "Order 0 " in second
    assert "Someone else" not in first + second


def test_history_needs_the_same_few_queries_for_many_rows(
    client, program, django_assert_max_num_queries
):
    member = member_with(0)
    for n in range(40):
        award_points(member=member, points=1, reason=f"r{n}", idempotency_key=f"q{n}")
    logged_in(client, member)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("rewards:history"))
    assert text(response).count("<tr>") - 1 == 25


# -- catalogue and redemption --------------------------------------------------------------------


def test_catalogue_shows_cost_affordability_and_only_rewards_for_the_member(client, program):
    TierFactory(name="Bronze", rank=1, points_threshold=0)
    gold = TierFactory(name="Gold", rank=2, points_threshold=10_000)
    member = member_with(300)
    RewardFactory(name="Coffee", points_cost=250)
    RewardFactory(name="Bag", points_cost=1000)
    RewardFactory(name="Gold lounge", points_cost=10, min_tier=gold)
    RewardFactory(name="Retired", points_cost=10, is_active=False)
    once = RewardFactory(name="Tote", points_cost=20, per_member_limit=1)
    redeem_reward(member=member, reward=once, idempotency_key="tote")

    page = text(logged_in(client, member).get(reverse("rewards:catalogue")))

    assert re.search(r'data-testid="points-balance">280<', page)
    coffee = re.search(r"<h2>Coffee</h2>.*?</li>", page, re.S).group(0)
    bag = re.search(r"<h2>Bag</h2>.*?</li>", page, re.S).group(0)
    tote = re.search(r"<h2>Tote</h2>.*?</li>", page, re.S).group(0)
    assert "You can afford this" in coffee and "Redeem" in coffee
    assert "You need 720 more points" in bag and "Redeem" not in bag
    assert "as often as allowed" in tote and "Redeem" not in tote
    assert "Gold lounge" not in page  # the member is Bronze
    assert "Retired" not in page


def test_catalogue_needs_the_same_few_queries_for_many_rewards(
    client, program, django_assert_max_num_queries
):
    TierFactory(name="Bronze", rank=1, points_threshold=0)
    member = member_with(500)
    for n in range(15):
        RewardFactory(name=f"Limited {n}", points_cost=100 + n, per_member_limit=2, stock=5)
    for n in range(15):
        reward = RewardFactory(name=f"Coupon {n}", kind=RewardKind.COUPON, points_cost=50)
        add_reward_codes(reward=reward, codes=[f"C{n}-1", f"C{n}-2"])
    logged_in(client, member)
    with django_assert_max_num_queries(9):
        response = client.get(reverse("rewards:catalogue"))
    assert text(response).count('data-testid="reward"') == 30


def test_redeem_through_the_confirm_page_shows_code_and_new_balance(client, program):
    member = member_with(500)
    reward = RewardFactory(name="Free coffee", points_cost=120, stock=3)
    logged_in(client, member)

    confirm = client.get(reverse("rewards:redeem", args=[reward.pk]))
    assert confirm.status_code == 200
    assert "Redeem Free coffee?" in text(confirm) and "380 points" in text(confirm)
    assert not Redemption.objects.exists()  # showing the confirm page writes nothing

    response = client.post(
        reverse("rewards:redeem", args=[reward.pk]),
        {"idempotency_key": confirm_key(confirm)},
        follow=True,
    )
    redemption = Redemption.objects.get()
    page = text(response)
    assert redemption.member == member and redemption.reward == reward
    assert response.redirect_chain[-1][0] == reverse("rewards:redemption", args=[redemption.pk])
    assert f'data-testid="reward-code">{redemption.code}<' in page
    assert 'data-testid="balance-after">380 points' in page
    assert f"Your code is {redemption.code}; your new balance is 380 points." in page
    assert balance(member) == 380
    reward.refresh_from_db()
    assert reward.stock == 2
    assert_consistent(member)


def test_each_confirm_page_gets_a_new_key(client, program):
    member = member_with(500)
    reward = RewardFactory(points_cost=100)
    logged_in(client, member)
    url = reverse("rewards:redeem", args=[reward.pk])
    assert confirm_key(client.get(url)) != confirm_key(client.get(url))


def test_double_submit_of_the_confirm_page_redeems_once(client, program):
    member = member_with(500)
    reward = RewardFactory(points_cost=100)
    logged_in(client, member)
    url = reverse("rewards:redeem", args=[reward.pk])
    key = confirm_key(client.get(url))

    first = client.post(url, {"idempotency_key": key})
    second = client.post(url, {"idempotency_key": key})

    assert Redemption.objects.count() == 1
    assert first["Location"] == second["Location"]
    assert balance(member) == 400
    assert_consistent(member)


def test_redeem_with_too_few_points_shows_a_message_and_writes_nothing(client, program):
    member = member_with(99)
    reward = RewardFactory(name="Bag", points_cost=100, stock=1)
    logged_in(client, member)
    before = PointsTransaction.objects.count()

    confirm = text(client.get(reverse("rewards:redeem", args=[reward.pk])))
    response = client.post(
        reverse("rewards:redeem", args=[reward.pk]),
        {"idempotency_key": str(uuid.uuid4())},
        follow=True,
    )

    assert "You need 1 more points" in confirm and "Confirm redemption" not in confirm
    assert response.redirect_chain[-1][0] == reverse("rewards:catalogue")
    assert (
        "You do not have enough points: this costs 100 and you have 99. Nothing was redeemed."
        in text(response)
    )
    assert not Redemption.objects.exists()
    assert PointsTransaction.objects.count() == before and balance(member) == 99
    reward.refresh_from_db()
    assert reward.stock == 1


def test_redeem_of_an_out_of_stock_reward_shows_a_message(client, program):
    member = member_with(500)
    reward = RewardFactory(name="Bag", points_cost=100, stock=0)
    logged_in(client, member)
    assert client.get(reverse("rewards:redeem", args=[reward.pk])).status_code == 404
    response = client.post(
        reverse("rewards:redeem", args=[reward.pk]),
        {"idempotency_key": str(uuid.uuid4())},
        follow=True,
    )
    assert "This reward is out of stock. Nothing was changed." in text(response)
    assert not Redemption.objects.exists() and balance(member) == 500


def test_suspended_member_cannot_redeem_and_is_told_why(client, program):
    member = member_with(500)
    reward = RewardFactory(points_cost=100)
    suspend_member(member=member)
    logged_in(client, member)
    response = client.post(
        reverse("rewards:redeem", args=[reward.pk]),
        {"idempotency_key": str(uuid.uuid4())},
        follow=True,
    )
    assert "Your membership is not active at the moment" in text(response)
    assert not Redemption.objects.exists() and balance(member) == 500


def test_redeem_without_a_valid_key_redeems_nothing(client, program):
    member = member_with(500)
    reward = RewardFactory(points_cost=100)
    logged_in(client, member)
    response = client.post(reverse("rewards:redeem", args=[reward.pk]), {"idempotency_key": "x"})
    assert response.status_code == 302
    assert response["Location"] == reverse("rewards:redeem", args=[reward.pk])
    assert not Redemption.objects.exists()


def test_a_key_used_by_another_member_never_returns_their_redemption(client, program):
    me = member_with(500)
    other = member_with(500)
    reward = RewardFactory(points_cost=100)
    key = str(uuid.uuid4())
    logged_in(Client(), other).post(
        reverse("rewards:redeem", args=[reward.pk]), {"idempotency_key": key}
    )
    theirs = Redemption.objects.get(member=other)

    response = logged_in(client, me).post(
        reverse("rewards:redeem", args=[reward.pk]), {"idempotency_key": key}, follow=True
    )

    mine = Redemption.objects.get(member=me)
    assert mine.pk != theirs.pk
    assert theirs.code not in text(response) and mine.code in text(response)
    assert balance(me) == 400 and balance(other) == 400


def test_my_rewards_lists_only_own_redemptions_and_hides_others(client, program):
    me = member_with(1000)
    other = member_with(1000)
    coffee = RewardFactory(name="Coffee", points_cost=100)
    mine = [redeem_reward(member=me, reward=coffee, idempotency_key=f"m{n}") for n in range(2)]
    theirs = redeem_reward(member=other, reward=coffee, idempotency_key="t")
    logged_in(client, me)

    page = text(client.get(reverse("rewards:my_rewards")))

    assert all(r.code in page for r in mine) and theirs.code not in page
    assert page.count("Completed") == 2
    assert client.get(reverse("rewards:redemption", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("rewards:redemption", args=[mine[0].pk])).status_code == 200


# -- membership plan -----------------------------------------------------------------------------


def test_join_and_cancel_the_plan_through_confirm_pages(client, program):
    program.timezone = "Europe/Amsterdam"
    program.save()
    plan = MembershipPlanFactory(name="Plus", trial_days=14)
    MembershipPlanFactory(name="Hidden", is_active=False)
    member = member_with(0)
    logged_in(client, member)

    page = text(client.get(reverse("rewards:membership")))
    assert "Plus" in page and "Hidden" not in page and "You are not on a paid plan" in page

    confirm = client.get(reverse("rewards:join", args=[plan.pk]))
    assert "Join Plus" in text(confirm) and 'name="accept"' in text(confirm)
    refused = client.post(reverse("rewards:join", args=[plan.pk]), {})
    assert "Tick the box" in text(refused) and not Subscription.objects.exists()

    with time_machine.travel(datetime(2025, 5, 1, 23, 30, tzinfo=UTC), tick=False):
        joined = client.post(reverse("rewards:join", args=[plan.pk]), {"accept": "on"}, follow=True)
    sub = Subscription.objects.get(member=member)
    assert sub.status == SubscriptionStatus.TRIALING and sub.plan == plan
    assert "Your free trial has started" in text(joined)
    page = text(client.get(reverse("rewards:membership")))
    assert "Trialing" in page and "Trial ends on" in page
    assert "16 May 2025" in page  # 15 May 23:30 UTC is 16 May in Amsterdam

    cancel_page = text(client.get(reverse("rewards:cancel")))
    assert "Yes, cancel my membership" in cancel_page
    sub.refresh_from_db()
    assert not sub.cancel_at_period_end  # the confirm page alone changes nothing
    cancelled = client.post(reverse("rewards:cancel"), follow=True)
    sub.refresh_from_db()
    assert sub.cancel_at_period_end and sub.status == SubscriptionStatus.TRIALING
    assert "Cancelled, active until the period ends" in text(cancelled)
    assert "Keep my membership" in text(cancelled)

    client.post(reverse("rewards:resume"))
    sub.refresh_from_db()
    assert not sub.cancel_at_period_end


def test_join_twice_keeps_one_subscription(client, program):
    plan = MembershipPlanFactory(name="Plus")
    member = member_with(0)
    logged_in(client, member)
    client.post(reverse("rewards:join", args=[plan.pk]), {"accept": "on"})
    again = client.post(reverse("rewards:join", args=[plan.pk]), {"accept": "on"}, follow=True)
    assert Subscription.objects.filter(member=member).count() == 1
    assert "You already have a membership plan" in text(again)


def test_membership_page_shows_only_own_subscription_and_cancel_touches_only_own(client, program):
    plus = MembershipPlanFactory(name="Plus")
    MembershipPlanFactory(name="Premium")
    other = member_with(0)
    theirs = subscribe(member=other, plan=plus)
    me = member_with(0)
    logged_in(client, me)

    page = text(client.get(reverse("rewards:membership")))
    assert "You are not on a paid plan" in page and "Your plan" not in page
    response = client.post(reverse("rewards:cancel"), follow=True)
    assert "You have no membership plan to cancel" in text(response)
    theirs.refresh_from_db()
    assert not theirs.cancel_at_period_end
