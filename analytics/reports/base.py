"""The pieces every dashboard is made of: which run a page shows, tables that render as HTML
or stream as CSV, value formatting, chart specs, and the per-run cache of member aggregates."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db.models import F
from django.http import StreamingHttpResponse

from ..models import Kpi, KpiSnapshot, PipelineRun, RunStatus

PERCENT_KPIS = frozenset(
    {
        Kpi.RETENTION_RATE,
        Kpi.CHURN_RATE,
        Kpi.REPEAT_PURCHASE_RATE,
        Kpi.REDEMPTION_RATE,
        Kpi.SUBSCRIBER_RETENTION,
    }
)
# Kept on feedback's own scales: NPS -100..100, CSAT 0..100 (%); changes are in points.
POINT_SCALE_KPIS = frozenset({Kpi.NPS, Kpi.CSAT})
MONEY_KPIS = frozenset({Kpi.AVERAGE_ORDER_VALUE, Kpi.POINTS_LIABILITY, Kpi.MRR})
COUNT_KPIS = frozenset(
    {Kpi.MEMBERS, Kpi.ACTIVE_30D, Kpi.ACTIVE_90D, Kpi.ENROLLMENTS, Kpi.SUBSCRIBERS}
)
PREVIOUS_PERIOD_DAYS = 30
TREND_DAYS = 365
TOP_MEMBERS = 50
HISTOGRAM_BINS = 20
COHORT_MONTHS = 12
METRICS_CACHE_SECONDS = 24 * 3600


# ---------------------------------------------------------------------------- which date


@dataclass(frozen=True)
class AsOf:
    """The date a page shows: the latest successful run on or before the date asked for."""

    requested: date | None
    run: PipelineRun | None

    @property
    def date(self) -> date | None:
        return self.run.as_of if self.run else None

    @property
    def differs(self) -> bool:
        return self.requested is not None and self.date is not None and self.requested != self.date


def resolve_as_of(requested: date | None) -> AsOf:
    runs = PipelineRun.objects.filter(status=RunStatus.SUCCEEDED)
    if requested is not None:
        runs = runs.filter(as_of__lte=requested)
    return AsOf(requested=requested, run=runs.order_by("-as_of", "-started_at").first())


# ---------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    # text, user (text a member typed), int, money, percent, pct100, number, date, kpi
    kind: str = "text"


@dataclass
class Table:
    """A table shown on a page and downloadable as CSV (`?format=csv&table=<name>`). `rows`
    is called lazily, so a CSV download streams without building a page."""

    name: str
    title: str
    columns: list[Column]
    rows: Callable[[], Iterable[dict]]
    note: str = ""
    row_classes: Callable[[dict], dict[str, str]] | None = None
    currency: str = ""
    display: Callable[[], Iterable[dict]] | None = None  # the HTML rows, when only a page
    csv_href: str = ""

    def csv_rows(self) -> Iterator[list]:
        yield [column.key for column in self.columns]
        for row in self.rows():
            yield [csv_value(row.get(column.key), column.kind) for column in self.columns]

    def display_rows(self) -> list[list[tuple[str, str]]]:
        out = []
        for row in (self.display or self.rows)():
            classes = self.row_classes(row) if self.row_classes else {}
            out.append(
                [
                    (
                        display_value(row.get(c.key), c.kind, currency=self.currency, row=row),
                        " ".join(
                            filter(
                                None,
                                [
                                    "num" if c.kind not in ("text", "user") else "",
                                    classes.get(c.key, ""),
                                ],
                            )
                        ),
                    )
                    for c in self.columns
                ]
            )
        return out


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe_text(value: str) -> str:
    """Text a member typed, made inert for spreadsheets: a leading =, +, -, @ would start a
    formula (CSV injection), so it gets a leading apostrophe."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


class _Echo:
    """A file-like object whose write returns the line: csv.writer as a line formatter."""

    def write(self, value):
        return value


def csv_response(rows: Iterable[list], filename: str) -> StreamingHttpResponse:
    """Rows streamed as a CSV download (a large export is never held in memory)."""
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def csv_value(value: Any, kind: str) -> Any:
    if value is None:
        return ""
    if kind == "user":
        return csv_safe_text(str(value))
    if kind == "money":
        return f"{Decimal(value):.2f}"
    if kind == "int":
        return int(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def display_value(value: Any, kind: str, *, currency: str = "", row: dict | None = None) -> str:
    if value is None or value == "":
        return "—"
    if kind == "kpi":
        return format_kpi(row["kpi"] if row else "", value, currency=currency)
    if kind == "percent":
        return f"{float(value) * 100:.1f}%"
    if kind == "pct100":
        return f"{float(value):.1f}%"
    if kind == "money":
        return f"{Decimal(value):,.2f} {currency}".strip()
    if kind == "int":
        return f"{int(value):,}"
    if kind == "number":
        return f"{float(value):,.2f}"
    if kind == "date":
        return value.isoformat()
    return str(value)


def format_kpi(kpi: str, value: Any, *, currency: str = "") -> str:
    if value is None:
        return "—"
    if kpi in PERCENT_KPIS:
        return f"{float(value) * 100:.1f}%"
    if kpi in MONEY_KPIS:
        return f"{Decimal(value):,.2f} {currency}".strip()
    if kpi in COUNT_KPIS:
        return f"{int(value):,}"
    if kpi == Kpi.NPS:
        return f"{float(value):+.1f}"
    if kpi == Kpi.CSAT:
        return f"{float(value):.1f}%"
    return f"{float(value):,.2f}"


def heat_class(rate: float | None) -> str:
    """A CSS class for a cohort cell: heat-0 (0-9%) .. heat-10 (100%)."""
    if rate is None:
        return "heat-none"
    return f"heat-{max(0, min(10, int(rate * 10)))}"


@dataclass
class Dashboard:
    as_of: AsOf
    charts: dict[str, dict] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def add_table(self, table: Table) -> Table:
        self.tables[table.name] = table
        return table


def materialised(rows: list[dict]) -> Callable[[], list[dict]]:
    return lambda: rows


def kpi_series(kpis: Iterable[str], *, end: date, days: int = TREND_DAYS) -> dict[str, list]:
    """{kpi: [(date, value), ...]} for the window ending at `end`: one query."""
    series: dict[str, list] = defaultdict(list)
    rows = (
        KpiSnapshot.objects.filter(
            kpi__in=list(kpis), as_of__gt=end - timedelta(days=days), as_of__lte=end
        )
        .order_by("as_of")
        .values_list("kpi", "as_of", "value")
    )
    for kpi, day, value in rows:
        series[kpi].append((day, value))
    return series


def line_chart(
    series: dict[str, list], kpis: Iterable[str], *, y: str = "number", title: str = ""
) -> dict:
    labels = sorted({day for kpi in kpis for day, _ in series.get(kpi, [])})
    datasets = []
    for kpi in kpis:
        by_day = dict(series.get(kpi, []))
        datasets.append(
            {
                "label": Kpi(kpi).label,
                "data": [num(by_day.get(day)) for day in labels],
            }
        )
    return {
        "type": "line",
        "title": title,
        "labels": [day.isoformat() for day in labels],
        "datasets": datasets,
        "y": y,
    }


def num(value) -> float | None:
    return None if value is None else float(value)


def bar_chart(title: str, rows: list[dict], value: str, *, y: str = "number") -> dict:
    return {
        "type": "bar",
        "title": title,
        "labels": [str(row["group"]) for row in rows],
        "datasets": [{"label": title, "data": [num(row[value]) for row in rows]}],
        "y": y,
    }


def members_chart(title: str, rows: list[dict], label: str) -> dict:
    """A bar chart of the rows' member counts, one bar per row labelled by `label`."""
    return {
        "type": "bar",
        "title": title,
        "labels": [row[label] for row in rows],
        "datasets": [{"label": "Members", "data": [row["members"] for row in rows]}],
        "y": "int",
    }


def metrics_run() -> PipelineRun | None:
    """The run whose figures MemberMetrics holds: the last successful one to finish (member
    figures are kept for one run only, so a re-run of an older date replaces them)."""
    return (
        PipelineRun.objects.filter(status=RunStatus.SUCCEEDED)
        .order_by(F("finished_at").desc(nulls_last=True), "-pk")
        .first()
    )


def member_metrics_note(as_of: AsOf, run: PipelineRun | None) -> str:
    if run is not None and as_of.date and run.as_of != as_of.date:
        return (
            "Member figures are kept for the latest run only: these are as of "
            f"{run.as_of:%-d %B %Y}."
        )
    return ""


def cached_for_run(run: PipelineRun | None, name: str, compute: Callable[[], Any]) -> Any:
    """Aggregates over every member's figures cost a scan of MemberMetrics; they cannot change
    until another run finishes, so they are cached under the run's identity for a day."""
    if run is None:
        return compute()
    finished = run.finished_at.isoformat() if run.finished_at else ""
    key = f"analytics:metrics:{run.pk}:{finished}:{name}"
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, METRICS_CACHE_SECONDS)
    return value


def monthly_last(points: list[tuple[date, Any]]) -> dict[date, tuple[date, Any]]:
    """The last snapshot of each month: {month start: (date, value)}."""
    months: dict[date, tuple[date, Any]] = {}
    for day, value in points:
        months[day.replace(day=1)] = (day, value)
    return months
