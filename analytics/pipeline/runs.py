"""Running the pipeline: record the run, fan the member id ranges out, fit, score, finish.

    summarise chunks (group) -> fit models -> score chunks (group) -> finish

Two chords in a chain: every chunk of one phase runs in parallel on whatever workers there are
(in process, one after the other, when tasks are eager), and the next step starts when the last
chunk is done. Each step reads what it needs from the database by run id, so any worker can
take any step, and a step that runs twice writes the same rows again. A failing step marks the
run failed with its error; a killed run stays "running" and is simply run again (a new run for
the same date replaces that date's snapshots).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import date, timedelta

from celery import chain, chord
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..models import KpiSnapshot, PipelineRun, RunStatus
from ..selectors import analytics_settings
from . import cohorts, kpis, members
from .common import execute, local_today, require_postgresql

logger = logging.getLogger(__name__)


def start_run(*, as_of: date, trigger: str, kpi_days: int = 1) -> PipelineRun:
    require_postgresql()
    if kpi_days < 1:
        raise ValueError("kpi_days must be at least 1.")
    return PipelineRun.objects.create(
        as_of=as_of,
        trigger=trigger,
        status=RunStatus.RUNNING,
        started_at=timezone.now(),
        details={"kpi_days": kpi_days},
    )


def workflow(run: PipelineRun, ranges: list[tuple[int, int]]):
    """The run's canvas. Every signature names the caller's default queue: the steps a worker
    starts itself (chord bodies, the second chord) then go where this run was sent."""
    from celery import current_app

    from .. import tasks

    queue = {"queue": current_app.conf.task_default_queue}
    return chain(
        chord(
            [tasks.summarise_chunk.si(run.pk, lo, hi).set(**queue) for lo, hi in ranges],
            tasks.fit_run.si(run.pk).set(**queue),
        ),
        chord(
            [tasks.score_chunk.si(run.pk, lo, hi).set(**queue) for lo, hi in ranges],
            tasks.finish_run.si(run.pk).set(**queue),
        ),
    )


def run_pipeline(
    *,
    as_of: date | None = None,
    trigger: str = "command",
    kpi_days: int = 1,
    per_chunk: int | None = None,
    wait: bool = True,
    timeout: float = 6 * 3600,
) -> PipelineRun:
    """Run the nightly pipeline as of a date (default: today in the program's timezone).

    With `wait` the call returns when the run has finished (and raises if it failed); without,
    it returns the running run once its tasks are queued (what the beat task does)."""
    as_of = as_of or local_today()
    run = start_run(as_of=as_of, trigger=trigger, kpi_days=kpi_days)
    try:
        per_chunk = per_chunk or analytics_settings().members_per_chunk
        ranges = members.member_id_ranges(per_chunk=per_chunk) or [(0, 1)]
        PipelineRun.objects.filter(pk=run.pk).update(chunks=len(ranges))
        logger.info("pipeline run %s as of %s: %s chunks", run.pk, as_of, len(ranges))
        result = workflow(run, ranges).apply_async()
        if wait:
            result.get(timeout=timeout, propagate=True)
    except Exception as exc:
        _mark_failed(run.pk, exc)
        raise
    run.refresh_from_db()
    return run


def _mark_failed(run_id: int, exc: BaseException) -> None:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    PipelineRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
        status=RunStatus.FAILED, finished_at=timezone.now(), error=text[:5000]
    )


def _step(run_id: int, fn: Callable[[PipelineRun], object]):
    run = PipelineRun.objects.get(pk=run_id)
    try:
        return fn(run)
    except Exception as exc:
        logger.exception("pipeline run %s failed", run_id)
        _mark_failed(run_id, exc)
        raise


def _mark(run: PipelineRun, name: str) -> None:
    """Seconds from the run's start to the end of a phase, kept in its details."""
    details = PipelineRun.objects.values_list("details", flat=True).get(pk=run.pk)
    details.setdefault("marks", {})[name] = round(
        (timezone.now() - run.started_at).total_seconds(), 3
    )
    PipelineRun.objects.filter(pk=run.pk).update(details=details)
    run.details = details


def summarise_step(run_id: int, lo: int, hi: int) -> int:
    return _step(run_id, lambda run: members.summarise_range(run=run, lo=lo, hi=hi))


def fit_step(run_id: int) -> None:
    def fit(run):
        _mark(run, "summarised")
        members.fit_models(run=run)
        _mark(run, "fitted")

    _step(run_id, fit)


def score_step(run_id: int, lo: int, hi: int) -> int:
    def score(run):
        written = members.score_range(run=run, lo=lo, hi=hi)
        PipelineRun.objects.filter(pk=run.pk).update(rows=F("rows") + written)
        return written

    return _step(run_id, score)


def finish_step(run_id: int) -> None:
    def finish(run):
        _mark(run, "scored")
        kpi_days = int(run.details.get("kpi_days", 1))
        snapshots = store_kpis(run=run, days=kpi_days)
        _mark(run, "kpis")
        cells = cohorts.build_cohorts(run=run)
        _mark(run, "cohorts")
        execute("DELETE FROM analytics_stage_member WHERE run_id = %(run)s", {"run": run.pk})
        execute("DELETE FROM analytics_stage_cohort WHERE run_id = %(run)s", {"run": run.pk})
        refresh_segments()
        _mark(run, "segments")
        PipelineRun.objects.filter(pk=run.pk).update(
            status=RunStatus.SUCCEEDED,
            finished_at=timezone.now(),
            rows=F("rows") + snapshots + cells,
            error="",
        )
        logger.info("pipeline run %s as of %s succeeded", run.pk, run.as_of)

    _step(run_id, finish)


def refresh_segments() -> None:
    from ..segments import refresh_segments as refresh

    refresh()


def store_kpis(*, run: PipelineRun | None, days: int = 1, as_of: date | None = None) -> int:
    """KPI snapshots for the run's date and the `days - 1` days before it, each replacing that
    day's snapshots; returns the rows written."""
    as_of = as_of or run.as_of
    written = 0
    for day in kpis.days_back(as_of, days):
        stage = run.pk if run is not None and day == run.as_of else None
        values = kpis.compute_kpis(as_of=day, stage_run_id=stage)
        with transaction.atomic():
            KpiSnapshot.objects.filter(as_of=day).delete()
            KpiSnapshot.objects.bulk_create(
                KpiSnapshot(run=run, as_of=day, kpi=kpi, value=value)
                for kpi, value in values.items()
            )
        written += len(values)
    return written


def backfill_kpis(*, as_of: date | None = None, days: int) -> int:
    """KPI history without a member run (e.g. to give the dashboards trends), ending with
    `as_of` (default: today in the program's timezone)."""
    require_postgresql()
    return store_kpis(run=None, days=days, as_of=as_of or local_today())


def yesterday() -> date:
    return local_today() - timedelta(days=1)
