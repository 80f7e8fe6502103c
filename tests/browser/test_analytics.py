import csv
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.analytics.factories import MemberFactory, SegmentFactory, build_dashboard_snapshots
from tests.conftest import PASSWORD, make_staff

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

PAGES = [
    ("Overview", "chart-members"),
    ("Retention", "chart-curves"),
    ("Lifetime value", "chart-distribution"),
    ("Churn risk", "chart-bands"),
    ("Journey", "chart-stages"),
    ("Feedback", "chart-nps"),
    ("Paid plan", "chart-survival"),
]


def admin_log_in(page, live_server, username):
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()


def charts_drawn(page) -> list[bool]:
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('canvas[data-chart]')).map(
            (canvas) => {
                const chart = Chart.getChart(canvas);
                return Boolean(chart && chart.data.datasets.length && canvas.width > 0);
            })"""
    )


def test_analyst_opens_every_dashboard_sees_charts_and_downloads_a_csv(
    live_server, page, console_errors
):
    make_staff("analyst", "Analyst")
    build_dashboard_snapshots()
    admin_log_in(page, live_server, "analyst")
    page.goto(f"{live_server.url}/analytics/")

    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    for label, chart_id in PAGES:
        page.get_by_role("navigation", name="Dashboards").get_by_role("link", name=label).click()
        expect(page.get_by_role("heading", name=label, level=1)).to_be_visible()
        expect(page.get_by_test_id("as-of")).to_contain_text("Data as of 31 March 2026")
        expect(page.get_by_test_id(chart_id)).to_have_attribute("data-drawn", "true")
        drawn = charts_drawn(page)
        assert drawn and all(drawn), (label, drawn)
        expect(page.get_by_role("link", name=re.compile("^Download CSV")).first).to_be_visible()

    expect(page.get_by_test_id("table-survival")).to_contain_text("62.7%")  # sBG S(1)

    page.get_by_role("navigation", name="Dashboards").get_by_role("link", name="Churn risk").click()
    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile("Download CSV.*High churn risk")).click()
    download = download_info.value
    assert download.suggested_filename == "churn-members-2026-03-31.csv"
    rows = list(csv.DictReader(Path(download.path()).read_text().splitlines()))
    assert [row["clv_12m"] for row in rows] == ["300.00", "200.00", "100.00"]

    # The date picker: an earlier date shows the earlier run.
    page.get_by_role("navigation", name="Dashboards").get_by_role("link", name="Overview").click()
    page.get_by_label("Data as of").fill("2026-03-20")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("as-of")).to_contain_text("Data as of 1 March 2026")
    expect(page.get_by_test_id("kpi-retention_rate")).to_contain_text("42.0%")
    assert console_errors == []


@pytest.mark.parametrize("role", ["Marketer", None])
def test_staff_without_the_analyst_group_is_refused(live_server, page, console_errors, role):
    make_staff("someone", role)
    admin_log_in(page, live_server, "someone")
    response = page.goto(f"{live_server.url}/analytics/")
    assert response.status == 403
    expect(page.get_by_text("The dashboards are for analysts.")).to_be_visible()
    expect(page.get_by_role("navigation", name="Dashboards")).to_have_count(0)


def test_member_is_refused(live_server, page):
    MemberFactory(email="pat@example.com", first_name="Pat", password=PASSWORD)
    page.goto(f"{live_server.url}/portal/login/")
    page.get_by_label("Email", exact=True).fill("pat@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Hello, Pat")).to_be_visible()
    assert page.goto(f"{live_server.url}/analytics/retention/").status == 403


def test_marketer_sees_the_live_count_while_editing_a_segment(live_server, page, console_errors):
    make_staff("marketer", "Marketer")
    MemberFactory(country="NL", marketing_consent=True)
    MemberFactory(country="NL")
    MemberFactory(country="DE", marketing_consent=True)
    segment = SegmentFactory(name="Dutch", slug="dutch")
    admin_log_in(page, live_server, "marketer")

    page.goto(f"{live_server.url}/admin/analytics/segment/{segment.pk}/change/")
    count = page.get_by_test_id("segment-live-count")
    expect(count).to_have_text("3 members match now.")
    page.get_by_label("Countries").fill("NL")
    expect(count).to_have_text("2 members match now.")
    page.get_by_label("Marketing consent").select_option("given")
    expect(count).to_have_text("1 member matches now.")
    page.get_by_label("Minimum age").fill("40")
    page.get_by_label("Maximum age").fill("30")
    expect(count).to_contain_text("Fix the rules to count: max_age")
    assert console_errors == []
