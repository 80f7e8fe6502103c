"""Progress of SMART goals, read from the KPI snapshots.

For a goal from `baseline` (on `baseline_on`) to `target` (by `deadline`), evaluated as of a
date D:

- current value: the KPI's latest non-empty snapshot on or after `baseline_on` and on or before
  the earlier of D and the deadline (after the deadline the goal is judged on the deadline's
  figure);
- progress: the share of the way from baseline to target, (current - baseline) / (target -
  baseline). It is negative when the KPI moved the wrong way and above 1 past the target. The
  formula holds for either direction, so a churn-rate goal from 0.20 down to 0.15 at 0.18 has
  progress 0.4;
- elapsed: the share of the time from `baseline_on` to the deadline that has passed at the
  current value's date, between 0 and 1;
- status: *achieved* when the current value reached the target (at or above it, or at or below
  it for the KPIs where lower is better, LOWER_IS_BETTER); *on track* when progress >= elapsed,
  i.e. at least as far along the way as along the time, so a straight line from baseline to
  target is exactly on track; *behind* otherwise (including past the deadline without reaching
  the target); *no data* when there is no snapshot in the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import models
from django.db.models import DateField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Least

from .models import LOWER_IS_BETTER, Goal, Kpi, KpiSnapshot


class GoalStatus(models.TextChoices):
    ACHIEVED = "achieved", "Achieved"
    ON_TRACK = "on_track", "On track"
    BEHIND = "behind", "Behind"
    NO_DATA = "no_data", "No data"


@dataclass(frozen=True)
class GoalProgress:
    goal: Goal
    current: Decimal | None
    current_on: date | None
    progress: float | None
    elapsed: float | None
    status: str

    @property
    def status_label(self) -> str:
        return GoalStatus(self.status).label

    @property
    def lower_is_better(self) -> bool:
        return self.goal.kpi in LOWER_IS_BETTER

    @property
    def progress_percent(self) -> int | None:
        """Progress for a bar: whole percent, clamped to 0..100."""
        if self.progress is None:
            return None
        return round(max(0.0, min(1.0, self.progress)) * 100)

    @property
    def progress_step(self) -> int:
        """Progress in 5% steps (0..20), for the CSS bar classes."""
        return round((self.progress_percent or 0) / 5)


def elapsed_share(*, baseline_on: date, deadline: date, on: date) -> float:
    span = (deadline - baseline_on).days
    if span <= 0:
        return 1.0
    return max(0.0, min(1.0, (on - baseline_on).days / span))


def evaluate(*, goal: Goal, current: Decimal | None, current_on: date | None) -> GoalProgress:
    """The progress and status of a goal given its current value (pure: no queries)."""
    if current is None or current_on is None:
        return GoalProgress(goal, None, None, None, None, GoalStatus.NO_DATA)
    baseline, target = Decimal(goal.baseline), Decimal(goal.target)
    progress = float((current - baseline) / (target - baseline))
    elapsed = elapsed_share(baseline_on=goal.baseline_on, deadline=goal.deadline, on=current_on)
    lower = goal.kpi in LOWER_IS_BETTER
    reached = current <= target if lower else current >= target
    if reached:
        status = GoalStatus.ACHIEVED
    elif progress >= elapsed:
        status = GoalStatus.ON_TRACK
    else:
        status = GoalStatus.BEHIND
    return GoalProgress(goal, current, current_on, progress, elapsed, status)


def with_current_values(goals: QuerySet[Goal], *, as_of: date) -> QuerySet[Goal]:
    """Annotate each goal with its current KPI value and that value's date: one query for
    any number of goals."""
    window_end = Least(OuterRef("deadline"), Value(as_of, output_field=DateField()))
    latest = KpiSnapshot.objects.filter(
        Q(kpi=OuterRef("kpi")),
        Q(as_of__gte=OuterRef("baseline_on")),
        Q(as_of__lte=window_end),
        value__isnull=False,
    ).order_by("-as_of")
    return goals.annotate(
        current_value=Subquery(latest.values("value")[:1]),
        current_on=Subquery(latest.values("as_of")[:1]),
    )


def goals_progress(*, as_of: date, goals: QuerySet[Goal] | None = None) -> list[GoalProgress]:
    """Every goal (or the given ones) with its progress as of a date, in one query."""
    goals = Goal.objects.select_related("owner") if goals is None else goals
    return [
        evaluate(goal=goal, current=goal.current_value, current_on=goal.current_on)
        for goal in with_current_values(goals, as_of=as_of)
    ]


def goal_progress(goal: Goal, *, as_of: date) -> GoalProgress:
    return goals_progress(as_of=as_of, goals=Goal.objects.filter(pk=goal.pk))[0]


def latest_kpi_value(kpi: str, *, on_or_before: date | None = None) -> KpiSnapshot | None:
    """The KPI's latest non-empty snapshot (the admin prefills a goal's baseline with it)."""
    snapshots = KpiSnapshot.objects.filter(kpi=kpi, value__isnull=False)
    if on_or_before is not None:
        snapshots = snapshots.filter(as_of__lte=on_or_before)
    return snapshots.order_by("-as_of").first()


def target_from_change(*, baseline: Decimal, change: str) -> Decimal:
    """A target from a relative or absolute change: '+15%' or '-5%' scale the baseline,
    '+0.05' or '-2' add to it. Raises ValueError on anything else."""
    text = change.strip().replace(" ", "").replace(",", ".")
    if not text or text[0] not in "+-":
        raise ValueError("Start the change with + or -, e.g. +15% or -0.02.")
    try:
        if text.endswith("%"):
            return baseline * (1 + Decimal(text[:-1]) / 100)
        return baseline + Decimal(text)
    except ArithmeticError as exc:
        raise ValueError("Write the change as a number, e.g. +15% or -0.02.") from exc


__all__ = [
    "GoalProgress",
    "GoalStatus",
    "Kpi",
    "evaluate",
    "goal_progress",
    "goals_progress",
    "latest_kpi_value",
    "target_from_change",
    "with_current_values",
]
