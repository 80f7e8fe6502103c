"""The nightly pipeline end to end, in process (eager tasks): member figures on a hand-checked
history, the run record, reruns and past dates."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from analytics.models import (
    ChurnRisk,
    ClvBand,
    CohortRetention,
    KpiSnapshot,
    MemberMetrics,
    ModelFit,
    PipelineRun,
    RfmSegment,
    RunStatus,
)
from analytics.pipeline import run_pipeline
from rewards.models import ProgramSettings

from .pipeline_data import hand_checked_history, member, purchase

AS_OF = date(2026, 6, 30)


@pytest.fixture
def history(db):
    return hand_checked_history()


def snapshot():
    """Everything a run writes, without ids and times."""
    metrics = list(
        MemberMetrics.objects.order_by("member_id").values_list(
            "member_id",
            "as_of",
            "purchase_days",
            "frequency",
            "recency_days",
            "tenure_days",
            "monetary",
            "total_spend",
            "p_alive",
            "expected_purchases_12m",
            "clv_12m",
            "clv_band",
            "churn_risk",
            "recency_score",
            "frequency_score",
            "monetary_score",
            "rfm_segment",
        )
    )
    kpis = list(KpiSnapshot.objects.order_by("as_of", "kpi").values_list("as_of", "kpi", "value"))
    cells = list(
        CohortRetention.objects.order_by("as_of", "basis", "cohort", "period").values_list(
            "as_of", "basis", "cohort", "period", "size", "retained", "projected"
        )
    )
    fits = list(
        ModelFit.objects.order_by("as_of", "model").values_list(
            "as_of", "model", "params", "log_likelihood", "n_customers", "converged"
        )
    )
    return metrics, kpis, cells, fits


def test_member_figures_in_buy_till_you_die_form(history):
    run = run_pipeline(as_of=AS_OF)
    assert run.status == RunStatus.SUCCEEDED

    a = MemberMetrics.objects.get(member=history["a"])
    # Purchase days 10 May and 20 June (two orders that day merged: 60.00).
    assert a.as_of == AS_OF
    assert (a.purchase_days, a.frequency) == (2, 1)
    assert (a.first_purchase_on, a.last_purchase_on) == (date(2026, 5, 10), date(2026, 6, 20))
    assert (a.recency_days, a.tenure_days) == (41, 51)
    assert a.monetary == Decimal("60.00")  # mean of the repeat purchase days
    assert a.total_spend == Decimal("90.00")
    assert a.last_activity_at.date() == date(2026, 6, 25)

    b = MemberMetrics.objects.get(member=history["b"])
    # The refunded order is not a purchase.
    assert (b.purchase_days, b.frequency, b.recency_days, b.tenure_days) == (1, 0, 0, 14)
    assert b.total_spend == Decimal("40.00") and b.monetary == Decimal("0.00")

    c = MemberMetrics.objects.get(member=history["c"])
    assert c.purchase_days == 0
    assert c.rfm_segment == RfmSegment.NO_PURCHASE
    assert c.churn_risk == ChurnRisk.NO_PURCHASE
    assert c.clv_band == ClvBand.NONE

    # Two purchasers cannot identify the models: the fits are kept but flagged, and no
    # model-based figure is made up from them.
    assert not ModelFit.objects.get(as_of=AS_OF, model="bgnbd").converged
    assert a.p_alive is None and a.clv_12m is None and a.clv_band == ClvBand.NONE

    # RFM quintiles over two purchasers (documented scoring): A is better on all three.
    assert (a.recency_score, a.frequency_score, a.monetary_score) == (3, 3, 3)
    assert (b.recency_score, b.frequency_score, b.monetary_score) == (1, 1, 1)
    assert a.rfm_segment == RfmSegment.POTENTIAL_LOYALIST
    assert b.rfm_segment == RfmSegment.LOST


def test_the_run_is_recorded(history):
    run = run_pipeline(as_of=AS_OF)
    run.refresh_from_db()
    assert run.trigger == "command"
    assert run.finished_at >= run.started_at
    assert run.chunks == 1
    # 3 member rows, 17 KPIs and the cohort cells.
    cells = CohortRetention.objects.filter(run=run).count()
    assert run.rows == 3 + KpiSnapshot.objects.filter(run=run).count() + cells
    assert run.error == ""
    assert set(run.details["marks"]) >= {"summarised", "fitted", "scored", "kpis", "cohorts"}


def test_running_twice_for_one_date_gives_identical_results(history):
    run_pipeline(as_of=AS_OF)
    first = snapshot()
    run_pipeline(as_of=AS_OF, per_chunk=1)  # and in many small chunks this time
    assert snapshot() == first
    assert PipelineRun.objects.filter(status=RunStatus.SUCCEEDED).count() == 2
    assert MemberMetrics.objects.count() == 3


def test_a_past_date_recomputes_identically_after_later_events(history):
    run_pipeline(as_of=AS_OF)
    first = snapshot()
    purchase(history["c"], date(2026, 7, 3), "70.00")
    member(date(2026, 7, 4))
    run_pipeline(as_of=date(2026, 7, 5))
    assert MemberMetrics.objects.count() == 4
    run_pipeline(as_of=AS_OF)
    metrics, kpis, cells, fits = snapshot()
    assert metrics == first[0]  # the July member is dropped again: one row per member, latest run
    assert [k for k in kpis if k[0] == AS_OF] == first[1]
    assert [c for c in cells if c[0] == AS_OF] == first[2]


def test_command_backfills_kpi_history(history):
    call_command("run_nightly", as_of="2026-06-30", kpi_days=5)
    assert KpiSnapshot.objects.values("as_of").distinct().count() == 5
    run = PipelineRun.objects.get()
    assert KpiSnapshot.objects.filter(run=run).count() == 5 * 17


def test_command_rejects_a_bad_date(db):
    with pytest.raises(CommandError, match="not a date"):
        call_command("run_nightly", as_of="30/06/2026")


def test_a_failing_run_is_recorded_and_can_be_run_again(history):
    ProgramSettings.objects.filter(pk=1).update(timezone="Mars/Olympus_Mons")
    with pytest.raises(Exception, match="Mars/Olympus_Mons"):
        run_pipeline(as_of=AS_OF)
    failed = PipelineRun.objects.get()
    assert failed.status == RunStatus.FAILED
    assert "Mars/Olympus_Mons" in failed.error
    assert failed.finished_at is not None
    assert not MemberMetrics.objects.exists()

    ProgramSettings.objects.filter(pk=1).update(timezone="Europe/Amsterdam")
    run = run_pipeline(as_of=AS_OF)
    assert run.status == RunStatus.SUCCEEDED
    assert MemberMetrics.objects.count() == 3


def test_beat_runs_the_pipeline_nightly_as_of_yesterday(history):
    from django_celery_beat.models import PeriodicTask

    from analytics.pipeline.runs import local_today
    from analytics.tasks import nightly_pipeline

    schedule = PeriodicTask.objects.get(task="analytics.tasks.nightly_pipeline")
    assert schedule.enabled and schedule.crontab.hour == "2"

    run_id = nightly_pipeline.delay().get()
    run = PipelineRun.objects.get(pk=run_id)
    assert run.trigger == "beat"
    assert run.as_of == local_today() - timedelta(days=1)
    assert run.status == RunStatus.SUCCEEDED


def test_demo_seeder_runs_the_pipeline_with_kpi_history(history):
    import random
    from io import StringIO

    from analytics.demo import KPI_HISTORY_DAYS, seed_analytics

    out = StringIO()
    seed_analytics(rng=random.Random(1), stdout=out)
    seed_analytics(rng=random.Random(1), stdout=out)  # idempotent: replaces the snapshots

    runs = PipelineRun.objects.filter(trigger="demo", status=RunStatus.SUCCEEDED)
    assert runs.count() == 2
    assert KpiSnapshot.objects.values("as_of").distinct().count() == KPI_HISTORY_DAYS
    assert KpiSnapshot.objects.count() == KPI_HISTORY_DAYS * 17
    assert MemberMetrics.objects.count() == 3
    assert "analytics: pipeline run as of" in out.getvalue()
