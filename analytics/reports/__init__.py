"""What the analysts' dashboards show, read from the pipeline's snapshot tables only (PipelineRun,
KpiSnapshot, CohortRetention, MemberMetrics, ModelFit) and the definitions (goals), never from
raw events, so a page costs a handful of queries whatever the program's size.

Each dashboard is a `Dashboard`: its charts (plain dicts that static/analytics/charts.js turns
into Chart.js charts) and its tables (`Table`: columns and rows, rendered as HTML or streamed
as CSV by the same view).

Units: rates and shares are stored as fractions (0.42 = 42%); NPS (-100..100) and CSAT (% of
satisfied answers, 0..100) on feedback's scales; money in the program's currency.
"""

from .base import (
    AsOf,
    Column,
    Dashboard,
    Table,
    cached_for_run,
    csv_response,
    csv_safe_text,
    format_kpi,
    resolve_as_of,
)
from .members import churn_risk, clv_histogram, journey, lifetime_value, member_rows
from .program import feedback, overview, paid_plan, previous_snapshot_date, retention

__all__ = [
    "AsOf",
    "Column",
    "Dashboard",
    "Table",
    "cached_for_run",
    "churn_risk",
    "clv_histogram",
    "csv_response",
    "csv_safe_text",
    "feedback",
    "format_kpi",
    "journey",
    "lifetime_value",
    "member_rows",
    "overview",
    "paid_plan",
    "previous_snapshot_date",
    "resolve_as_of",
    "retention",
]
