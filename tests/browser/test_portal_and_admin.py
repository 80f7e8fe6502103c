import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from members.models import Member
from tests.conftest import PASSWORD, make_staff
from tests.members.factories import MemberFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def test_visitor_signs_up_logs_in_edits_profile_and_downloads_data(
    live_server, page, console_errors
):
    page.goto(f"{live_server.url}/portal/signup/")
    page.get_by_label("Email", exact=True).fill("visitor@example.com")
    page.get_by_label("First name").fill("Vera")
    page.get_by_label("Last name").fill("Visser")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Join").click()
    expect(page.get_by_role("heading", name="Hello, Vera")).to_be_visible()
    number = Member.objects.get(email="visitor@example.com").member_number
    expect(page.get_by_test_id("member-number")).to_have_text(number)

    page.get_by_role("button", name="Log out").click()
    page.goto(f"{live_server.url}/portal/login/")
    page.get_by_label("Email", exact=True).fill("VISITOR@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Hello, Vera")).to_be_visible()

    page.get_by_role("link", name="Profile").click()
    page.get_by_label("City").fill("Haarlem")
    page.get_by_label("Country (two-letter code)").fill("nl")
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_text("Your profile is saved.")).to_be_visible()
    expect(page.get_by_label("City")).to_have_value("Haarlem")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download my data").click()
    data = json.loads(Path(download_info.value.path()).read_text())
    assert data["profile"]["city"] == "Haarlem"
    assert data["profile"]["country"] == "NL"
    assert data["profile"]["member_number"] == number
    assert console_errors == []


def test_marketer_logs_into_admin_and_finds_a_member(live_server, page):
    make_staff("marketer", "Marketer")
    target = MemberFactory(email="needle@example.com", first_name="Nina")
    MemberFactory(email="hay@example.com")
    page.goto(f"{live_server.url}/admin/")
    page.get_by_label("Username").fill("marketer")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.locator("a[href='/admin/members/member/']").first.click()
    page.locator("#searchbar").fill("needle@example.com")
    page.locator("#changelist-search input[type=submit]").click()
    expect(page.get_by_role("link", name=target.member_number)).to_be_visible()
    expect(page.get_by_text("hay@example.com")).to_have_count(0)


def test_member_is_refused_other_members_and_the_admin(live_server, page):
    MemberFactory(email="me@example.com", password=PASSWORD)
    other = MemberFactory(email="other@example.com")
    page.goto(f"{live_server.url}/portal/login/")
    page.get_by_label("Email", exact=True).fill("me@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("member-number")).to_be_visible()

    response = page.goto(f"{live_server.url}/api/v1/members/{other.pk}/")
    assert response.status == 403
    assert "other@example.com" not in page.content()

    page.goto(f"{live_server.url}/admin/members/member/{other.pk}/change/")
    expect(page.get_by_text("not authorized to access this page")).to_be_visible()
    assert "other@example.com" not in page.content()
