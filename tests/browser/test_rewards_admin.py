import re

import pytest
from playwright.sync_api import expect

from rewards.models import EarningRule, PointsTransaction, Purchase, Tier
from rewards.services import award_points
from tests.conftest import PASSWORD, make_staff
from tests.members.factories import MemberFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/admin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()


def test_marketer_configures_a_rule_and_a_tier_then_simulates_a_purchase(
    live_server, page, console_errors
):
    make_staff("marketer", "Marketer")
    member = MemberFactory(email="anna@example.com", first_name="Anna")
    log_in(page, live_server, "marketer")

    # An earning rule: 1 point per EUR on purchases of at least 10 EUR.
    page.get_by_role("link", name="Earning rules").click()
    page.get_by_role("link", name="Add earning rule").click()
    page.get_by_label("Name").fill("1 point per EUR")
    page.get_by_label("Kind").select_option(label="Points per money unit spent")
    page.get_by_label("Points per unit").fill("1")
    page.get_by_label("Min amount").fill("10")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("was added successfully")).to_be_visible()
    expect(page.locator("#result_list").get_by_role("link", name="1 point per EUR")).to_be_visible()

    # A tier that doubles what its members earn.
    page.get_by_role("link", name="Tiers").first.click()
    page.get_by_role("link", name="Add tier").click()
    page.get_by_label("Name").fill("Gold")
    page.get_by_label("Rank").fill("1")
    page.get_by_label("Points threshold").fill("100")
    page.get_by_label("Earn multiplier").fill("2")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("was added successfully")).to_be_visible()
    assert Tier.objects.get(name="Gold").points_threshold == 100

    # Anna earns her way into Gold.
    award_points(member=member, points=150, reason="Welcome", idempotency_key="welcome")
    rows_before = PointsTransaction.objects.count()

    page.get_by_role("link", name="Earning rules").first.click()
    page.get_by_role("link", name="Simulate an event").click()
    expect(page.get_by_role("heading", name="Rule simulator")).to_be_visible()
    page.get_by_label("Member (number or email)").fill(member.member_number)
    page.get_by_label("Event type").fill("purchase")
    page.get_by_label("Amount").fill("42.50")
    page.get_by_label("Currency").fill("EUR")
    page.get_by_label("Order id").fill("WEB-1001")
    page.get_by_role("button", name="Simulate").click()

    result = page.get_by_test_id("simulation-result")
    expect(result.get_by_role("heading")).to_contain_text("Anna")
    lines = result.get_by_test_id("breakdown-line")
    expect(lines).to_have_count(2)
    expect(lines.nth(0)).to_contain_text(re.compile(r"1 point per EUR\s+42\s+42\.50 EUR × 1"))
    expect(lines.nth(1)).to_contain_text(re.compile(r"Gold tier bonus\s+42\s+×2"))
    expect(page.get_by_test_id("simulation-total")).to_have_text("84")

    # Below the rule's minimum nothing matches.
    page.get_by_label("Amount").fill("9.99")
    page.get_by_role("button", name="Simulate").click()
    expect(page.get_by_text("No rule matches this event.")).to_be_visible()
    expect(page.get_by_test_id("simulation-total")).to_have_text("0")

    # Bad input is shown on the form.
    page.get_by_label("Properties (JSON)").fill("{oops")
    page.get_by_role("button", name="Simulate").click()
    expect(page.get_by_text("Not valid JSON")).to_be_visible()

    assert EarningRule.objects.get().min_amount == 10
    assert PointsTransaction.objects.count() == rows_before
    assert not Purchase.objects.exists()
    assert console_errors == []


def test_support_adjusts_points_from_the_member_page(live_server, page, console_errors):
    make_staff("support", "Support")
    member = MemberFactory(email="bob@example.com", first_name="Bob")
    award_points(member=member, points=100, reason="Welcome", idempotency_key="welcome-bob")
    log_in(page, live_server, "support")

    page.goto(f"{live_server.url}/admin/members/member/{member.pk}/change/")
    page.get_by_role("link", name="Adjust points").click()
    expect(page.get_by_label("Member (number or email)")).to_have_value(member.member_number)
    page.get_by_label("Points").fill("-150")
    page.get_by_label("Reason").fill("Goodwill reversal")
    page.get_by_role("button", name="Adjust points").click()
    expect(page.get_by_text("does not have enough points")).to_be_visible()

    page.get_by_label("Points").fill("25")
    page.get_by_role("button", name="Adjust points").click()
    expect(page.get_by_text("the balance is 125")).to_be_visible()
    expect(page.get_by_role("cell", name="Goodwill reversal", exact=True)).to_be_visible()
    row = PointsTransaction.objects.get(reason="Goodwill reversal")
    assert row.points == 25 and row.actor.username == "support"
    assert console_errors == []
