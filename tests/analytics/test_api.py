"""The analytics API: KPIs, cohorts, latest model fits and a member's metrics, behind the
analytics.view_* permissions of the Analyst and Marketer roles."""

from datetime import date

import pytest
from rest_framework.test import APIClient

from analytics.pipeline import run_pipeline
from members.roles import ANALYST, MARKETER, SUPPORT
from members.services import create_api_key
from tests.conftest import make_staff

from .pipeline_data import event, member, purchase

AS_OF = date(2026, 6, 30)


def client_for(role):
    user = make_staff(f"api-{role.lower()}", role)
    _, raw = create_api_key(user=user, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


@pytest.fixture
def analyst_api(db):
    return client_for(ANALYST)


@pytest.fixture
def ran(db):
    a = member(date(2026, 1, 10))
    purchase(a, date(2026, 5, 10), "30.00")
    purchase(a, date(2026, 6, 20), "50.00")
    event(member(date(2026, 3, 1)), "page_view", date(2026, 5, 15))
    run_pipeline(as_of=AS_OF, kpi_days=2)
    return {"a": a}


def test_kpis_of_the_latest_day_and_of_a_chosen_day(analyst_api, ran):
    response = analyst_api.get("/api/v1/analytics/kpis/")
    assert response.status_code == 200
    body = response.json()
    assert body["as_of"] == "2026-06-30"
    values = {row["kpi"]: row for row in body["kpis"]}
    assert len(values) == 17
    assert values["members"]["value"] == "2.000000"
    assert values["members"]["label"] == "Members"
    assert values["nps"]["value"] is None

    earlier = analyst_api.get("/api/v1/analytics/kpis/", {"as_of": "2026-06-29"})
    assert earlier.status_code == 200 and earlier.json()["as_of"] == "2026-06-29"
    assert analyst_api.get("/api/v1/analytics/kpis/", {"as_of": "2026-06-01"}).status_code == 404
    bad = analyst_api.get("/api/v1/analytics/kpis/", {"as_of": "yesterday"})
    assert bad.status_code == 400 and "as_of" in bad.json()


def test_cohort_cells_filtered_by_basis(analyst_api, ran):
    response = analyst_api.get("/api/v1/analytics/cohorts/", {"basis": "first_purchase"})
    assert response.status_code == 200
    cells = response.json()["results"]
    assert [(c["cohort"], c["period"], c["size"], c["retained"]) for c in cells] == [
        ("2026-05-01", 0, 1, 1),
        ("2026-05-01", 1, 1, 1),
    ]
    assert cells[0]["rate"] == 1.0
    everything = analyst_api.get("/api/v1/analytics/cohorts/").json()
    assert {c["basis"] for c in everything["results"]} == {"enrollment", "first_purchase"}
    assert analyst_api.get("/api/v1/analytics/cohorts/", {"basis": "x"}).status_code == 400


def test_latest_model_fits(analyst_api, ran):
    response = analyst_api.get("/api/v1/analytics/model-fits/latest/")
    assert response.status_code == 200
    fits = {fit["model"]: fit for fit in response.json()}
    assert set(fits) == {"bgnbd", "gamma_gamma"}
    bgnbd = fits["bgnbd"]
    assert set(bgnbd["params"]) == {"r", "alpha", "a", "b"}
    assert bgnbd["time_unit"] == "week"
    assert bgnbd["n_customers"] == 1
    assert bgnbd["as_of"] == "2026-06-30"
    assert "log_likelihood" in bgnbd and "converged" in bgnbd


def test_member_metrics(analyst_api, ran):
    response = analyst_api.get(f"/api/v1/members/{ran['a'].pk}/metrics/")
    assert response.status_code == 200
    body = response.json()
    assert body["frequency"] == 1
    assert body["recency_days"] == 41
    assert body["T"] == 51
    assert body["monetary"] == "50.00"
    # The only purchaser ties with every quintile boundary, so scores 1 (documented rule).
    assert (body["recency_score"], body["frequency_score"], body["rfm_segment"]) == (1, 1, "lost")
    assert {"p_alive", "expected_purchases_90d", "expected_purchases_12m", "clv_12m"} <= set(body)
    assert analyst_api.get("/api/v1/members/999999/metrics/").status_code == 404


def test_marketers_read_and_support_is_refused(ran):
    marketer_api = client_for(MARKETER)
    assert marketer_api.get("/api/v1/analytics/kpis/").status_code == 200
    support_api = client_for(SUPPORT)
    for url in (
        "/api/v1/analytics/kpis/",
        "/api/v1/analytics/cohorts/",
        "/api/v1/analytics/model-fits/latest/",
        f"/api/v1/members/{ran['a'].pk}/metrics/",
    ):
        assert support_api.get(url).status_code == 403, url
    assert APIClient().get("/api/v1/analytics/kpis/").status_code in (401, 403)


def test_no_run_yet_is_a_404_not_an_error(analyst_api):
    assert analyst_api.get("/api/v1/analytics/kpis/").status_code == 404
    assert analyst_api.get("/api/v1/analytics/cohorts/").json()["results"] == []
    assert analyst_api.get("/api/v1/analytics/model-fits/latest/").json() == []
