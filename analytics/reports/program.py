"""Dashboards over the program-level snapshots: KPIs (overview, feedback, paid plan) and cohort
tables (retention, paid-plan survival)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from ..btyd import sbg_survival
from ..goals import GoalProgress, goals_progress
from ..models import (
    LOWER_IS_BETTER,
    CohortBasis,
    CohortRetention,
    FitModel,
    Kpi,
    KpiSnapshot,
    ModelFit,
)
from ..pipeline.cohorts import SBG_SCOPE
from .base import (
    COHORT_MONTHS,
    PERCENT_KPIS,
    POINT_SCALE_KPIS,
    PREVIOUS_PERIOD_DAYS,
    AsOf,
    Column,
    Dashboard,
    Table,
    format_kpi,
    heat_class,
    kpi_series,
    line_chart,
    materialised,
    monthly_last,
    num,
)

# ---------------------------------------------------------------------------- overview


@dataclass(frozen=True)
class KpiCard:
    kpi: str
    label: str
    value: Decimal | None
    previous: Decimal | None
    previous_on: date | None
    display: str
    change_display: str
    trend: str  # "better", "worse", "flat" or ""
    direction: str = ""  # "up", "down", "flat" or ""


def previous_snapshot_date(as_of: date, days: int = PREVIOUS_PERIOD_DAYS) -> date | None:
    """The snapshot date nearest to `days` before `as_of` (and earlier than it); on a tie the
    earlier one. Two indexed look-ups."""
    target = as_of - timedelta(days=days)
    before = (
        KpiSnapshot.objects.filter(as_of__lte=target).order_by("-as_of").values_list("as_of")[:1]
    )
    after = (
        KpiSnapshot.objects.filter(as_of__gt=target, as_of__lt=as_of)
        .order_by("as_of")
        .values_list("as_of")[:1]
    )
    candidates = [row[0] for row in before] + [row[0] for row in after]
    if not candidates:
        return None
    return min(candidates, key=lambda day: (abs((day - target).days), day))


def kpi_cards(as_of: date, *, currency: str) -> list[KpiCard]:
    current = dict(KpiSnapshot.objects.filter(as_of=as_of).values_list("kpi", "value"))
    previous_on = previous_snapshot_date(as_of)
    previous = (
        dict(KpiSnapshot.objects.filter(as_of=previous_on).values_list("kpi", "value"))
        if previous_on
        else {}
    )
    cards = []
    for kpi, label in Kpi.choices:
        value, before = current.get(kpi), previous.get(kpi)
        change_display, trend, direction = "", "", ""
        if value is not None and before is not None:
            change = value - before
            direction = "up" if change > 0 else "down" if change < 0 else "flat"
            if kpi in PERCENT_KPIS:
                change_display = f"{float(change) * 100:+.1f} pts"
            elif kpi in POINT_SCALE_KPIS:
                change_display = f"{float(change):+.1f} pts"
            elif before:
                change_display = f"{float(change / abs(before)) * 100:+.1f}%"
            else:
                change_display = f"{float(change):+,.2f}"
            if change == 0:
                trend = "flat"
            else:
                better = change < 0 if kpi in LOWER_IS_BETTER else change > 0
                trend = "better" if better else "worse"
        cards.append(
            KpiCard(
                kpi=kpi,
                label=label,
                value=value,
                previous=before,
                previous_on=previous_on,
                display=format_kpi(kpi, value, currency=currency),
                change_display=change_display,
                trend=trend,
                direction=direction,
            )
        )
    return cards


def overview(as_of: AsOf, *, currency: str) -> Dashboard:
    board = Dashboard(as_of=as_of)
    day = as_of.date
    cards = kpi_cards(day, currency=currency)
    goals = goals_progress(as_of=day)
    board.extra.update(cards=cards, goals=goals, previous_on=cards[0].previous_on)
    series = kpi_series([Kpi.MEMBERS, Kpi.ACTIVE_30D, Kpi.ACTIVE_90D], end=day)
    board.charts["members"] = line_chart(
        series, [Kpi.MEMBERS, Kpi.ACTIVE_30D, Kpi.ACTIVE_90D], title="Members and active members"
    )
    board.add_table(
        Table(
            name="kpis",
            title="KPIs",
            columns=[
                Column("kpi", "KPI code"),
                Column("label", "KPI"),
                Column("value", "Value", "kpi"),
                Column("previous", "Previous period", "kpi"),
                Column("previous_on", "Previous date", "date"),
                Column("change", "Change"),
            ],
            rows=materialised(
                [
                    {
                        "kpi": c.kpi,
                        "label": c.label,
                        "value": c.value,
                        "previous": c.previous,
                        "previous_on": c.previous_on,
                        "change": c.change_display,
                    }
                    for c in cards
                ]
            ),
            currency=currency,
        )
    )
    board.add_table(goals_table(goals, currency=currency))
    return board


def goals_table(goals: list[GoalProgress], *, currency: str) -> Table:
    rows = [
        {
            "goal": p.goal.name,
            "kpi": p.goal.kpi,
            "kpi_label": Kpi(p.goal.kpi).label,
            "baseline": p.goal.baseline,
            "baseline_on": p.goal.baseline_on,
            "target": p.goal.target,
            "deadline": p.goal.deadline,
            "current": p.current,
            "current_on": p.current_on,
            "progress": p.progress,
            "elapsed": p.elapsed,
            "status": p.status_label,
            "owner": p.goal.owner.get_username(),
        }
        for p in goals
    ]
    status_class = {
        "Achieved": "status-achieved",
        "On track": "status-on-track",
        "Behind": "status-behind",
        "No data": "status-no-data",
    }
    return Table(
        name="goals",
        title="Goals",
        columns=[
            Column("goal", "Goal"),
            Column("kpi_label", "KPI"),
            Column("baseline", "Baseline", "kpi"),
            Column("baseline_on", "Baseline on", "date"),
            Column("target", "Target", "kpi"),
            Column("deadline", "Deadline", "date"),
            Column("current", "Current", "kpi"),
            Column("current_on", "Current on", "date"),
            Column("progress", "Progress", "percent"),
            Column("elapsed", "Time elapsed", "percent"),
            Column("status", "Status"),
            Column("owner", "Owner"),
        ],
        rows=materialised(rows),
        note=(
            "Progress: share of the way from baseline to target. On track: progress at least "
            "the share of the time elapsed from the baseline date to the deadline."
        ),
        row_classes=lambda row: {"status": status_class.get(row["status"], "")},
        currency=currency,
    )


# ---------------------------------------------------------------------------- retention


def months_before(day: date, months: int) -> date:
    """The first day of the month `months` before day's month."""
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def cohort_cells(as_of: date, basis: str) -> list[CohortRetention]:
    """The latest COHORT_MONTHS cohorts' cells of the table stored for as_of."""
    first_cohort = months_before(as_of, COHORT_MONTHS - 1)
    return list(
        CohortRetention.objects.filter(as_of=as_of, basis=basis, cohort__gte=first_cohort).order_by(
            "cohort", "period"
        )
    )


def retention(as_of: AsOf, *, basis: str) -> Dashboard:
    board = Dashboard(as_of=as_of)
    cells = cohort_cells(as_of.date, basis)
    periods = sorted({cell.period for cell in cells})
    by_cohort: dict[date, dict[int, CohortRetention]] = defaultdict(dict)
    for cell in cells:
        by_cohort[cell.cohort][cell.period] = cell
    heatmap = []
    for cohort, row in sorted(by_cohort.items()):
        size = next(iter(row.values())).size
        heatmap.append(
            {
                "cohort": cohort,
                "size": size,
                "cells": [
                    (
                        f"{row[p].rate * 100:.0f}%" if p in row and row[p].rate is not None else "",
                        heat_class(row[p].rate) if p in row else "heat-none",
                        f"{row[p].retained} of {row[p].size}" if p in row else "",
                    )
                    for p in periods
                ],
            }
        )
    board.extra.update(heatmap=heatmap, periods=periods, basis=basis)
    # Curves: the latest cohorts with at least three months to show (or simply the latest),
    # one line each, plus the size-weighted mean over every cohort.
    grown = [cohort for cohort in sorted(by_cohort) if len(by_cohort[cohort]) >= 3]
    recent = (grown or sorted(by_cohort))[-6:]
    datasets = [
        {
            "label": cohort.strftime("%b %Y"),
            "data": [
                num(by_cohort[cohort][p].rate) if p in by_cohort[cohort] else None for p in periods
            ],
        }
        for cohort in recent
    ]
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for cell in cells:
        totals[cell.period][0] += cell.retained
        totals[cell.period][1] += cell.size
    datasets.append(
        {
            "label": "All cohorts (weighted)",
            "data": [totals[p][0] / totals[p][1] if totals[p][1] else None for p in periods],
            "emphasis": True,
        }
    )
    board.charts["curves"] = {
        "type": "line",
        "title": "Retention curves",
        "labels": [f"Month {p}" for p in periods],
        "datasets": datasets,
        "y": "percent",
    }
    series = kpi_series([Kpi.RETENTION_RATE, Kpi.CHURN_RATE], end=as_of.date)
    board.charts["rates"] = line_chart(
        series, [Kpi.RETENTION_RATE, Kpi.CHURN_RATE], y="percent", title="Retention and churn"
    )
    board.add_table(
        Table(
            name="cohorts",
            title="Cohort cells",
            columns=[
                Column("cohort", "Cohort", "date"),
                Column("period", "Months later", "int"),
                Column("size", "Cohort size", "int"),
                Column("retained", "Retained", "int"),
                Column("rate", "Retention", "percent"),
            ],
            rows=materialised(
                [
                    {
                        "cohort": c.cohort,
                        "period": c.period,
                        "size": c.size,
                        "retained": c.retained,
                        "rate": c.rate,
                    }
                    for c in cells
                ]
            ),
        )
    )
    return board


# ---------------------------------------------------------------------------- feedback


def feedback(as_of: AsOf) -> Dashboard:
    board = Dashboard(as_of=as_of)
    series = kpi_series([Kpi.NPS, Kpi.CSAT], end=as_of.date)
    board.charts["nps"] = line_chart(series, [Kpi.NPS], title="Net Promoter Score")
    board.charts["csat"] = line_chart(series, [Kpi.CSAT], y="pct100", title="CSAT (% satisfied)")
    nps, csat = monthly_last(series.get(Kpi.NPS, [])), monthly_last(series.get(Kpi.CSAT, []))
    rows = [
        {
            "month": month.strftime("%Y-%m"),
            "nps": nps.get(month, (None, None))[1],
            "csat": csat.get(month, (None, None))[1],
        }
        for month in sorted(set(nps) | set(csat))
    ]
    board.add_table(
        Table(
            name="monthly",
            title="NPS and CSAT by month",
            columns=[
                Column("month", "Month"),
                Column("nps", "NPS", "number"),
                Column("csat", "CSAT", "pct100"),
            ],
            rows=materialised(rows),
            note="The last snapshot of each month.",
        )
    )
    return board


# ---------------------------------------------------------------------------- paid plan

PROJECT_AHEAD = 6  # months of sBG projection past the oldest cohort's age


def survival_rows(cells: list[CohortRetention], fit: ModelFit | None) -> list[dict]:
    """The share still subscribed t months after joining, per t: the actual curve chains each
    month's renewal rate (retained at t over retained at t-1, summed over the cohorts observed
    at t), like a Kaplan-Meier estimate, so young cohorts do not bend the tail; the projection
    is the sBG survival B(gamma, delta + t) / B(gamma, delta) of the pooled fit."""
    by_cohort: dict[date, dict[int, int]] = defaultdict(dict)
    sizes: dict[date, int] = {}
    for cell in cells:
        by_cohort[cell.cohort][cell.period] = cell.retained
        sizes[cell.cohort] = cell.size
    if fit is not None and not fit.converged:
        fit = None
    last = max((max(periods) for periods in by_cohort.values()), default=-1)
    horizon = last + (PROJECT_AHEAD if fit else 0)
    projected = sbg_survival(fit.params, range(horizon + 1)) if fit else None
    rows, share = [], 1.0
    for period in range(horizon + 1):
        observed = [c for c, periods in by_cohort.items() if period in periods]
        retained = sum(by_cohort[c][period] for c in observed)
        if period == 0:
            base = sum(sizes[c] for c in observed)
        else:
            base = sum(by_cohort[c].get(period - 1, 0) for c in observed)
        actual = None
        if observed and share is not None:
            share = share * retained / base if base else None
            actual = share
        rows.append(
            {
                "period": period,
                "subscribers": sum(sizes[c] for c in observed),
                "retained": retained if observed else None,
                "actual": actual,
                "projected": float(projected[period]) if projected is not None else None,
            }
        )
    return rows


def paid_plan(as_of: AsOf, *, currency: str) -> Dashboard:
    board = Dashboard(as_of=as_of)
    cells = list(
        CohortRetention.objects.filter(as_of=as_of.date, basis=CohortBasis.SUBSCRIPTION).order_by(
            "cohort", "period"
        )
    )
    fits = list(ModelFit.objects.filter(as_of=as_of.date, model=FitModel.SBG).order_by("scope"))
    rows = survival_rows(cells, next((f for f in fits if f.scope == SBG_SCOPE), None))
    board.charts["survival"] = {
        "type": "line",
        "title": "Share still subscribed",
        "labels": [f"Month {row['period']}" for row in rows],
        "datasets": [
            {"label": "Actual", "data": [row["actual"] for row in rows]},
            {"label": "sBG projection", "data": [row["projected"] for row in rows], "dashed": True},
        ],
        "y": "percent",
    }
    board.add_table(
        Table(
            name="survival",
            title="Survival by months since joining",
            columns=[
                Column("period", "Months since joining", "int"),
                Column("subscribers", "Subscribers in cohorts this old", "int"),
                Column("retained", "Still subscribed", "int"),
                Column("actual", "Actual", "percent"),
                Column("projected", "sBG projection", "percent"),
            ],
            rows=materialised(rows),
            note="Actual: each month's renewal rate among the cohorts old enough to have "
            "reached it, chained from month 0 (so cohorts of different ages pool without "
            f"bias); projection: the fitted shifted-beta-geometric model, {PROJECT_AHEAD} "
            "months past the oldest cohort.",
        )
    )
    series = kpi_series([Kpi.MRR, Kpi.SUBSCRIBERS, Kpi.SUBSCRIBER_RETENTION], end=as_of.date)
    board.charts["mrr"] = line_chart(
        series, [Kpi.MRR], y="money", title=f"Monthly recurring revenue ({currency})"
    )
    mrr, subscribers = (
        monthly_last(series.get(Kpi.MRR, [])),
        monthly_last(series.get(Kpi.SUBSCRIBERS, [])),
    )
    board.add_table(
        Table(
            name="mrr",
            title="MRR and subscribers by month",
            columns=[
                Column("month", "Month"),
                Column("subscribers", "Subscribers", "int"),
                Column("mrr", "MRR", "money"),
            ],
            rows=materialised(
                [
                    {
                        "month": month.strftime("%Y-%m"),
                        "subscribers": subscribers.get(month, (None, None))[1],
                        "mrr": mrr.get(month, (None, None))[1],
                    }
                    for month in sorted(set(mrr) | set(subscribers))
                ]
            ),
            note="The last snapshot of each month.",
            currency=currency,
        )
    )
    board.extra["fits"] = fits
    return board
