import csv
import io
from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from analytics.models import Kpi, RunStatus
from tests.analytics.factories import (
    LATEST,
    PREVIOUS,
    KpiSnapshotFactory,
    PipelineRunFactory,
    build_dashboard_snapshots,
)
from tests.conftest import PASSWORD
from tests.members.factories import MemberFactory

pytestmark = pytest.mark.django_db

PAGES = ["overview", "retention", "lifetime_value", "churn", "journey", "feedback", "paid_plan"]


@pytest.fixture
def data():
    return build_dashboard_snapshots()


@pytest.fixture
def analyst_client(client, analyst):
    client.force_login(analyst)
    return client


def csv_rows(response) -> list[dict]:
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("page", PAGES)
def test_every_page_shows_the_latest_run_to_an_analyst(analyst_client, data, page):
    response = analyst_client.get(reverse(f"analytics:{page}"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Data as of <strong>31 March 2026</strong>" in body
    assert 'data-chart="chart-' in body
    assert "Download CSV" in body


@pytest.mark.parametrize("page", PAGES)
def test_pages_are_refused_to_marketers_with_403(client, marketer, data, page):
    client.force_login(marketer)
    assert client.get(reverse(f"analytics:{page}")).status_code == 403


def test_pages_are_refused_to_members(client, data):
    member = MemberFactory(email="pat@example.com", password=PASSWORD)
    client.force_login(member.user)
    assert client.get(reverse("analytics:overview")).status_code == 403


def test_analyst_who_is_not_staff_is_refused(client, analyst, data):
    analyst.is_staff = False
    analyst.save()
    client.force_login(analyst)
    assert client.get(reverse("analytics:retention")).status_code == 403


def test_anonymous_visitors_go_to_the_admin_login(client):
    response = client.get(reverse("analytics:churn") + "?band=high")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login") + "?next=")


def test_superuser_sees_the_dashboards(client, data):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client.force_login(admin)
    assert client.get(reverse("analytics:paid_plan")).status_code == 200


def test_overview_cards_compare_with_the_run_30_days_earlier(analyst_client, data):
    response = analyst_client.get(reverse("analytics:overview"))
    cards = {card.kpi: card for card in response.context["board"].extra["cards"]}
    retention = cards[Kpi.RETENTION_RATE]
    assert retention.display == "45.0%"
    assert retention.previous_on == PREVIOUS
    assert retention.change_display == "+3.0 pts"
    assert retention.trend == "better"
    # Churn fell: good news for a lower-is-better KPI.
    assert cards[Kpi.CHURN_RATE].trend == "better"
    # Liability rose: bad news.
    assert cards[Kpi.POINTS_LIABILITY].trend == "worse"
    assert cards[Kpi.MEMBERS].change_display == "+9.1%"
    assert cards[Kpi.MRR].display == "748.50 EUR"
    assert cards[Kpi.NPS].display == "+31.5"
    assert cards[Kpi.NPS].change_display == "+3.5 pts"
    assert cards[Kpi.CSAT].display == "82.0%"
    assert cards[Kpi.CSAT].change_display == "+2.0 pts"
    body = response.content.decode()
    assert "Retention +15%" in body
    assert "On track" in body


def test_previous_period_is_the_nearest_snapshot_when_none_is_exactly_30_days_back(
    analyst_client, data
):
    KpiSnapshotFactory(as_of=LATEST - timedelta(days=27), kpi=Kpi.MEMBERS, value=1150)
    response = analyst_client.get(reverse("analytics:overview"))
    cards = {card.kpi: card for card in response.context["board"].extra["cards"]}
    assert cards[Kpi.MEMBERS].previous_on == PREVIOUS  # 30 days back beats 27


def test_previous_snapshot_date_is_the_nearest_to_30_days_back():
    from analytics.reports import previous_snapshot_date

    today = date(2026, 6, 30)
    assert previous_snapshot_date(today) is None
    KpiSnapshotFactory(as_of=today - timedelta(days=40))
    assert previous_snapshot_date(today) == today - timedelta(days=40)
    KpiSnapshotFactory(as_of=today - timedelta(days=25))
    assert previous_snapshot_date(today) == today - timedelta(days=25)
    KpiSnapshotFactory(as_of=today - timedelta(days=35))
    assert previous_snapshot_date(today) == today - timedelta(days=35)  # a tie: the earlier
    KpiSnapshotFactory(as_of=today)
    assert previous_snapshot_date(today) == today - timedelta(days=35)


def test_overview_kpi_csv(analyst_client, data):
    response = analyst_client.get(reverse("analytics:overview") + "?format=csv&table=kpis")
    assert response["Content-Disposition"] == 'attachment; filename="overview-kpis-2026-03-31.csv"'
    rows = {row["kpi"]: row for row in csv_rows(response)}
    assert rows["retention_rate"]["value"] == "0.450000"
    assert rows["retention_rate"]["previous"] == "0.420000"
    assert rows["retention_rate"]["previous_on"] == "2026-03-01"
    assert len(rows) == len(Kpi.choices)


def test_goals_csv(analyst_client, data):
    response = analyst_client.get(reverse("analytics:overview") + "?format=csv&table=goals")
    (row,) = csv_rows(response)
    assert row["goal"] == "Retention +15%"
    assert row["current"] == "0.450000"
    assert float(row["progress"]) == pytest.approx(5 / 6, rel=1e-4)
    assert row["status"] == "On track"


def test_churn_list_is_highest_value_first_and_its_csv_has_every_member(analyst_client, data):
    response = analyst_client.get(reverse("analytics:churn"))
    table = response.context["board"].tables["members"]
    shown = [row[0][0] for row in table.display_rows()]
    high_risk = sorted(data["metrics"][:3], key=lambda m: m.clv_12m, reverse=True)
    assert shown == [m.member.member_number for m in high_risk]
    rows = csv_rows(analyst_client.get(reverse("analytics:churn") + "?format=csv&table=members"))
    assert [row["member_number"] for row in rows] == shown
    assert rows[0]["clv_12m"] == "300.00"
    low = csv_rows(
        analyst_client.get(reverse("analytics:churn") + "?band=low&format=csv&table=members")
    )
    assert len(low) == 3


def test_lifetime_value_tables(analyst_client, data):
    board = analyst_client.get(reverse("analytics:lifetime_value")).context["board"]
    top = list(board.tables["top"].rows())
    assert [row["clv_12m"] for row in top][:2] == [600, 500]
    by_tier = {row["group"]: row for row in board.tables["by_tier"].rows()}
    assert by_tier["Gold"]["members"] == 3
    assert by_tier["No tier"]["members"] == 3
    by_segment = {row["group"]: row for row in board.tables["by_segment"].rows()}
    assert by_segment["Champions"]["total_clv"] == 400 + 500 + 600
    distribution = board.tables["distribution"].rows()
    assert sum(row["members"] for row in distribution) == 6
    rows = csv_rows(
        analyst_client.get(reverse("analytics:lifetime_value") + "?format=csv&table=by_channel")
    )
    assert rows == [
        {
            "group": "Web",
            "members": "6",
            "average_clv": "350.00",
            "total_clv": "2100.00",
            "average_p_alive": "0.65",
        }
    ]


def test_retention_heatmap_and_basis(analyst_client, data):
    response = analyst_client.get(reverse("analytics:retention"))
    heatmap = response.context["board"].extra["heatmap"]
    assert [row["cohort"] for row in heatmap] == [date(2026, 1, 1), date(2026, 2, 1)]
    assert [text for text, _, _ in heatmap[0]["cells"]] == ["100%", "80%", "60%"]
    assert [css for _, css, _ in heatmap[0]["cells"]] == ["heat-10", "heat-8", "heat-6"]
    assert heatmap[1]["cells"][2][1] == "heat-none"
    rows = csv_rows(
        analyst_client.get(
            reverse("analytics:retention") + "?basis=first_purchase&format=csv&table=cohorts"
        )
    )
    assert len(rows) == 5
    assert rows[1] == {
        "cohort": "2026-01-01",
        "period": "1",
        "size": "100",
        "retained": "80",
        "rate": "0.8",
    }


def test_paid_plan_survival_against_projection(analyst_client, data):
    response = analyst_client.get(reverse("analytics:paid_plan"))
    survival = {row["period"]: row for row in response.context["board"].tables["survival"].rows()}
    assert survival[1]["actual"] == pytest.approx((45 + 35) / 90)
    assert survival[1]["projected"] == pytest.approx(1.182 / (0.704 + 1.182))  # sBG S(1)
    assert survival[2]["subscribers"] == 50
    assert survival[2]["actual"] == pytest.approx(80 / 90 * 40 / 45)  # chained renewal rates
    assert "gamma = 0.704" in response.content.decode()
    chart = response.context["board"].charts["survival"]
    assert [d["label"] for d in chart["datasets"]] == ["Actual", "sBG projection"]
    rows = csv_rows(analyst_client.get(reverse("analytics:paid_plan") + "?format=csv&table=mrr"))
    assert rows[-1] == {"month": "2026-03", "subscribers": "150", "mrr": "748.50"}


def test_feedback_series(analyst_client, data):
    response = analyst_client.get(reverse("analytics:feedback"))
    assert 'href="/feedback/results/"' in response.content.decode()
    board = response.context["board"]
    assert board.charts["csat"]["datasets"][0]["data"] == [80.0, 82.0]
    assert board.tables["monthly"].display_rows()[0][2][0] == "82.0%"
    assert board.charts["nps"]["datasets"][0]["data"] == [28.0, 31.5]
    rows = list(board.tables["monthly"].rows())
    assert [row["month"] for row in rows] == ["2026-03"]  # both snapshots fall in March


def test_journey_page_links_the_map(analyst_client, data):
    response = analyst_client.get(reverse("analytics:journey"))
    assert reverse("journeys:map") in response.content.decode()
    rows = list(response.context["board"].tables["stages"].rows())
    assert rows == [
        {
            "stage": "No stage",
            "order": None,
            "members": 6,
            "average_clv": pytest.approx(350),
            "average_p_alive": pytest.approx(0.65),
            "high_risk": 3,
        }
    ]


def test_as_of_picks_the_latest_run_on_or_before_the_date(analyst_client, data):
    response = analyst_client.get(reverse("analytics:overview") + "?as_of=2026-03-20")
    assert response.context["as_of"].date == PREVIOUS
    body = response.content.decode()
    assert "Data as of <strong>1 March 2026</strong>" in body
    assert "the latest run on or before 20 March 2026" in body
    cards = {card.kpi: card for card in response.context["board"].extra["cards"]}
    assert cards[Kpi.RETENTION_RATE].display == "42.0%"
    rows = csv_rows(
        analyst_client.get(
            reverse("analytics:overview") + "?as_of=2026-03-20&format=csv&table=kpis"
        )
    )
    assert {row["kpi"]: row["value"] for row in rows}["members"] == "1100.000000"


def test_failed_runs_are_not_shown(analyst_client, data):
    PipelineRunFactory(as_of=LATEST + timedelta(days=1), status=RunStatus.FAILED)
    response = analyst_client.get(reverse("analytics:overview"))
    assert response.context["as_of"].date == LATEST


def test_date_before_any_run_says_there_is_no_data(analyst_client, data):
    response = analyst_client.get(reverse("analytics:retention") + "?as_of=2020-01-01")
    assert response.status_code == 200
    assert b"No pipeline run finished for 1 January 2020 or earlier" in response.content
    csv_response = analyst_client.get(
        reverse("analytics:retention") + "?as_of=2020-01-01&format=csv"
    )
    assert csv_response.status_code == 404


def test_invalid_date_shows_an_error_and_the_latest_run(analyst_client, data):
    response = analyst_client.get(reverse("analytics:overview") + "?as_of=31-03")
    assert response.context["as_of"].date == LATEST
    assert "Enter a valid date" in response.content.decode()


def test_unknown_csv_table_is_404(analyst_client, data):
    response = analyst_client.get(reverse("analytics:overview") + "?format=csv&table=nope")
    assert response.status_code == 404


def test_no_run_yet(analyst_client):
    response = analyst_client.get(reverse("analytics:lifetime_value"))
    assert response.status_code == 200
    assert b"has not finished a run yet" in response.content


@pytest.mark.parametrize("page", PAGES)
def test_query_count_does_not_grow_with_members(
    analyst_client, page, django_assert_max_num_queries
):
    build_dashboard_snapshots(members=40)
    with django_assert_max_num_queries(16):
        response = analyst_client.get(reverse(f"analytics:{page}"))
    assert response.status_code == 200


def test_member_aggregates_are_cached_until_another_run_finishes(
    analyst_client, data, django_assert_max_num_queries
):
    url = reverse("analytics:lifetime_value")
    first = analyst_client.get(url).context["board"].tables["by_segment"].rows()
    with django_assert_max_num_queries(9):  # the grouped scans come from the cache
        analyst_client.get(url)
    metrics = data["metrics"][0]
    metrics.rfm_segment = "lost"
    metrics.save()
    assert analyst_client.get(url).context["board"].tables["by_segment"].rows() == first
    PipelineRunFactory(as_of=LATEST + timedelta(days=1))
    rows = analyst_client.get(url).context["board"].tables["by_segment"].rows()
    assert {row["group"] for row in rows} == {"Champions", "At risk", "Lost"}


def test_member_pages_say_when_member_figures_are_from_a_later_run(analyst_client, data):
    response = analyst_client.get(reverse("analytics:churn") + "?as_of=2026-03-10")
    assert response.context["as_of"].date == PREVIOUS
    assert "these are as of 31 March 2026" in response.content.decode()


def test_member_csv_defuses_formulas_in_names(analyst_client, data):
    member = data["metrics"][0].member
    member.first_name = "=1+2"
    member.save()
    rows = csv_rows(analyst_client.get(reverse("analytics:churn") + "?format=csv&table=members"))
    assert "'=1+2 Member" in [row["name"] for row in rows]
