"""Demo data for analytics: the dashboards' segments and goals (analytics.demo_definitions),
then one pipeline run as of today with 90 days of KPI history, so every
dashboard has data and trends. Idempotent: a second run replaces the same snapshots."""

from django.db import connection

from .demo_definitions import seed_definitions
from .pipeline import run_pipeline

KPI_HISTORY_DAYS = 90


def seed_analytics(*, rng, stdout) -> None:
    if connection.vendor != "postgresql":
        stdout.write("analytics: the pipeline needs PostgreSQL; no snapshots on this database")
        return
    run = run_pipeline(trigger="demo", kpi_days=KPI_HISTORY_DAYS)
    # After the run, so the demo goals take their baselines from the KPI history.
    seed_definitions(rng=rng, stdout=stdout)
    fits = ", ".join(
        f"{fit.model} {'converged' if fit.converged else 'not converged'}"
        for fit in run.fits.order_by("model")
    )
    stdout.write(
        f"analytics: pipeline run as of {run.as_of} ({run.status}, {run.rows} rows; {fits})"
    )
