from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from journeys.services import seed_default_stages
from rewards.models import PointsAccount
from tests.conftest import PASSWORD
from tests.journeys.factories import TouchpointFactory
from tests.members.factories import MemberFactory
from tests.rewards.factories import EarningRuleFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def test_purchase_sent_through_the_api_shows_on_the_activity_page_with_its_points(
    live_server, page, console_errors, integration_user, api_key
):
    seed_default_stages()  # the transactional flush removed the migrated stages
    if not integration_user.has_perm("journeys.add_customerevent"):
        integration_user.user_permissions.add(
            Permission.objects.get(content_type__app_label="journeys", codename="add_customerevent")
        )
    EarningRuleFactory(name="Points per euro", points_per_unit=Decimal("2"))
    TouchpointFactory(name="Online checkout", slug="online-checkout", channel="web")
    member = MemberFactory(email="pat@example.com", first_name="Pat", password=PASSWORD)

    answer = page.request.post(
        f"{live_server.url}/api/v1/events/",
        headers={"Authorization": f"Api-Key {api_key}"},
        data={
            "member_number": member.member_number,
            "event_type": "purchase",
            "idempotency_key": "order-1001",
            "amount": "21.00",
            "currency": "EUR",
            "channel": "web",
            "touchpoint": "online-checkout",
            "order_id": "1001",
        },
    )
    assert answer.status == 201, answer.text()
    assert answer.json()["points_awarded"] == 42
    assert PointsAccount.objects.get(member=member).balance == 42

    page.goto(f"{live_server.url}/portal/login/")
    page.get_by_label("Email", exact=True).fill("pat@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Hello, Pat")).to_be_visible()

    page.get_by_role("link", name="Activity", exact=True).click()

    expect(page.get_by_role("heading", name="Your activity")).to_be_visible()
    row = page.get_by_role("row", name="Purchase")
    expect(row).to_contain_text("order 1001")
    expect(row).to_contain_text("Online checkout")
    expect(row).to_contain_text("21.00 EUR")
    expect(row.get_by_test_id("activity-points")).to_have_text("+42")
    expect(page.get_by_test_id("journey-stage")).to_have_text("First purchase")
    assert console_errors == []
