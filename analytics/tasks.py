"""Celery tasks of the nightly pipeline: thin wrappers around analytics.pipeline.runs.

The beat task queues a run as of yesterday (the last complete day in the program's timezone);
the chunk tasks take a run id and an id range and are safe to run twice.
"""

import logging

from celery import shared_task

from .pipeline import runs

logger = logging.getLogger(__name__)


@shared_task
def nightly_pipeline(kpi_days: int = 1) -> int:
    run = runs.run_pipeline(as_of=runs.yesterday(), trigger="beat", kpi_days=kpi_days, wait=False)
    logger.info("nightly pipeline queued: run %s as of %s", run.pk, run.as_of)
    return run.pk


@shared_task
def summarise_chunk(run_id: int, lo: int, hi: int) -> int:
    return runs.summarise_step(run_id, lo, hi)


@shared_task
def fit_run(run_id: int) -> None:
    runs.fit_step(run_id)


@shared_task
def score_chunk(run_id: int, lo: int, hi: int) -> int:
    return runs.score_step(run_id, lo, hi)


@shared_task
def finish_run(run_id: int) -> int:
    runs.finish_step(run_id)
    return run_id
