"""The nightly pipeline on a real Celery worker (Redis broker): the chunks, the fit, the
scoring and the finish step all run in the worker process, through chords."""

from datetime import date

import pytest

from analytics.models import KpiSnapshot, MemberMetrics, ModelFit, PipelineRun, RunStatus
from analytics.pipeline import run_pipeline
from tests.analytics.pipeline_data import event, member, purchase

pytestmark = pytest.mark.integration

AS_OF = date(2026, 6, 30)


@pytest.mark.django_db(transaction=True)
def test_a_run_on_a_real_worker_completes(celery_worker_process):
    people = [member(date(2026, 1, 10 + i)) for i in range(6)]
    for i, who in enumerate(people):
        purchase(who, date(2026, 3, 1 + i), "20.00")
        purchase(who, date(2026, 5, 1 + i), f"{30 + i}.00")
        event(who, "page_view", date(2026, 6, 10 + i))

    # Two members per chunk: three chunks in each fan-out.
    run = run_pipeline(as_of=AS_OF, per_chunk=2, timeout=40)

    log = celery_worker_process["log"].read_text()
    assert run.status == RunStatus.SUCCEEDED, run.error + log[-3000:]
    assert run.chunks == 3
    assert "analytics.tasks.summarise_chunk" in log and "analytics.tasks.finish_run" in log
    assert MemberMetrics.objects.filter(as_of=AS_OF, purchase_days=2).count() == 6
    assert ModelFit.objects.filter(run=run).count() == 2
    assert KpiSnapshot.objects.filter(as_of=AS_OF).count() == 17
    assert PipelineRun.objects.get(pk=run.pk).finished_at is not None
