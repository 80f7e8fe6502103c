"""The pipeline's admin: read-only lists of runs, fits and snapshots; analysts run it again."""

from datetime import date

import pytest

from analytics.models import PipelineRun, RunStatus
from analytics.pipeline import run_pipeline

from .pipeline_data import member, purchase

AS_OF = date(2026, 6, 30)


@pytest.fixture
def ran(db):
    who = member(date(2026, 1, 10))
    purchase(who, date(2026, 5, 10), "30.00")
    return run_pipeline(as_of=AS_OF)


@pytest.mark.parametrize(
    "url",
    [
        "/admin/analytics/pipelinerun/",
        "/admin/analytics/modelfit/",
        "/admin/analytics/kpisnapshot/",
        "/admin/analytics/cohortretention/",
        "/admin/analytics/membermetrics/",
    ],
)
def test_analyst_sees_the_read_only_lists(client, analyst, ran, url):
    client.force_login(analyst)
    response = client.get(url)
    assert response.status_code == 200
    assert b"to view |" in response.content  # Django titles read-only lists "Select ... to view"


def test_analyst_runs_the_pipeline_again_for_a_date(client, analyst, ran):
    client.force_login(analyst)
    response = client.post(
        "/admin/analytics/pipelinerun/",
        {"action": "run_again", "_selected_action": [ran.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert PipelineRun.objects.filter(as_of=AS_OF, status=RunStatus.SUCCEEDED).count() == 2
    assert b"Run as of 2026-06-30: succeeded" in response.content


def test_marketer_cannot_run_the_pipeline(client, marketer, ran):
    client.force_login(marketer)
    response = client.get("/admin/analytics/pipelinerun/")
    assert response.status_code == 200
    assert b"run_again" not in response.content
    client.post(
        "/admin/analytics/pipelinerun/", {"action": "run_again", "_selected_action": [ran.pk]}
    )
    assert PipelineRun.objects.count() == 1


def test_analyst_changes_the_settings_within_their_rules(client, analyst):
    from decimal import Decimal

    from analytics.selectors import analytics_settings

    analytics_settings()
    client.force_login(analyst)
    url = "/admin/analytics/analyticssettings/1/change/"
    form = {
        "clv_discount_rate": "0.0800",
        "churn_high_below": "0.8",
        "churn_medium_below": "0.5",
        "lapsed_after_days": "90",
        "members_per_chunk": "1000",
    }
    refused = client.post(url, form)
    assert refused.status_code == 200  # high-risk threshold above the medium one: form error
    assert analytics_settings().clv_discount_rate == Decimal("0.1000")
    accepted = client.post(url, {**form, "churn_high_below": "0.2"})
    assert accepted.status_code == 302
    assert analytics_settings().clv_discount_rate == Decimal("0.0800")
