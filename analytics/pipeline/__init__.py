"""The nightly analytics pipeline (see runs.py for how a run is carried out).

Public entry points: `run_pipeline` (the command, the beat task, the admin and seed_demo all
call it) and `backfill_kpis`.
"""

from .runs import backfill_kpis, run_pipeline

__all__ = ["backfill_kpis", "run_pipeline"]
