import pytest
from playwright.sync_api import expect

from rewards.models import PointsAccount, Redemption
from rewards.services import award_points
from tests.conftest import PASSWORD
from tests.members.factories import MemberFactory
from tests.rewards.factories import RewardFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def test_member_redeems_a_reward_and_finds_the_code_in_my_rewards(
    live_server, page, console_errors
):
    member = MemberFactory(email="saver@example.com", first_name="Sam", password=PASSWORD)
    award_points(member=member, points=500, reason="Welcome bonus", idempotency_key="welcome")
    RewardFactory(name="Free coffee", points_cost=120)
    RewardFactory(name="Weekend away", points_cost=9000)

    page.goto(f"{live_server.url}/portal/login/")
    page.get_by_label("Email", exact=True).fill("saver@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Hello, Sam")).to_be_visible()
    expect(page.get_by_test_id("points-balance")).to_have_text("500")

    page.get_by_role("link", name="Rewards", exact=True).click()
    expect(page.get_by_role("heading", name="Rewards", exact=True)).to_be_visible()
    expect(page.get_by_text("You need 8500 more points.")).to_be_visible()
    page.get_by_role("link", name="Redeem Free coffee").click()

    expect(page.get_by_role("heading", name="Redeem Free coffee?")).to_be_visible()
    assert not Redemption.objects.exists()
    page.get_by_role("button", name="Confirm redemption").click()

    redemption = Redemption.objects.get(member=member)
    expect(page.get_by_test_id("reward-code")).to_have_text(redemption.code)
    expect(page.get_by_test_id("balance-after")).to_have_text("380 points")
    expect(page.get_by_role("status")).to_contain_text("your new balance is 380 points")
    assert PointsAccount.objects.get(member=member).balance == 380

    page.get_by_role("link", name="My rewards", exact=True).click()
    expect(page.get_by_role("heading", name="My rewards")).to_be_visible()
    row = page.get_by_role("row", name=redemption.code)
    expect(row).to_contain_text("Free coffee")
    expect(row).to_contain_text("Completed")
    assert console_errors == []
