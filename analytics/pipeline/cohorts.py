"""Cohort retention tables and the paid plan's shifted-beta-geometric fit.

Months are calendar months in the program's timezone; period k of a cohort is the k-th month
after the cohort's month (period 0 is the cohort's own month).

- enrollment: members by enrollment month; retained in period k = members with an event they
  caused in that month. Cells run up to the as-of month, whose figures are month-to-date.
- first_purchase: purchasing members by the month of their first purchase; retained in period k
  = members who purchased in that month (period 0 is everyone). Also up to the as-of month.
- subscription: paid-plan subscriptions by the month they started; retained in period k =
  subscriptions still live k months after their own start (not yet cancelled or expired, from
  the status history). A cell exists only once every subscription of the cohort has reached k
  months by the as-of day, so no cell is partly observed. These survivor counts are what the
  sBG model is fitted on (all cohorts pooled, one period = one month), and each cell's
  `projected` holds the model's share S(k).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from django.db import transaction
from django.utils import timezone

from .. import btyd
from ..models import CohortBasis, CohortRetention, FitModel, ModelFit, PipelineRun
from .common import cutoff, fetch, month_start, months_between, program_zone

SBG_SCOPE = "all plans"

AGE_MONTHS = "(extract(year from age({later}, {earlier})) * 12 + extract(month from age({later}, {earlier})))::int"  # noqa: E501

SUBSCRIPTION_LIVES = f"""
WITH ended AS (
    SELECT subscription_id, min(occurred_at) AS ended_at
    FROM rewards_subscriptionevent
    WHERE to_status IN ('cancelled', 'expired') AND occurred_at < %(end)s
    GROUP BY subscription_id
), local AS (
    SELECT s.started_at AT TIME ZONE %(tz)s AS start_local,
           e.ended_at AT TIME ZONE %(tz)s AS end_local
    FROM rewards_subscription s LEFT JOIN ended e ON e.subscription_id = s.id
    WHERE s.started_at < %(end)s
)
SELECT cohort, lived, count(*), min(observed)
FROM (
    SELECT date_trunc('month', start_local)::date AS cohort,
           CASE WHEN end_local IS NULL THEN NULL
                ELSE {AGE_MONTHS.format(later="end_local - interval '1 microsecond'", earlier="start_local")}
           END AS lived,
           {AGE_MONTHS.format(later="(%(end)s AT TIME ZONE %(tz)s)", earlier="start_local")} AS observed
    FROM local
) lives
GROUP BY cohort, lived
"""  # noqa: E501, S608


def activity_cells(*, run: PipelineRun) -> list[CohortRetention]:
    """Enrollment and first-purchase cells from the partial counts every chunk wrote."""
    sizes: dict[tuple[str, date], int] = {}
    retained: dict[tuple[str, date, int], int] = {}
    rows = fetch(
        "SELECT basis, cohort, period, sum(members) FROM analytics_stage_cohort "
        "WHERE run_id = %(run)s GROUP BY 1, 2, 3",
        {"run": run.pk},
    )
    for basis, cohort, period, members in rows:
        if period < 0:
            sizes[(basis, cohort)] = int(members)
        else:
            retained[(basis, cohort, period)] = int(members)
    last_month = month_start(run.as_of)
    cells = []
    for (basis, cohort), size in sorted(sizes.items()):
        for period in range(months_between(cohort, last_month) + 1):
            cells.append(
                CohortRetention(
                    run=run,
                    as_of=run.as_of,
                    basis=basis,
                    cohort=cohort,
                    period=period,
                    size=size,
                    retained=retained.get((basis, cohort, period), 0),
                )
            )
    return cells


def subscription_survivors(as_of: date) -> dict[date, list[int]]:
    """Per start month: survivors at periods 0..k, k being the last period every subscription of
    the cohort has reached by the as-of day."""
    zone = program_zone()
    rows = fetch(SUBSCRIPTION_LIVES, {"end": cutoff(as_of, zone), "tz": str(zone.key)})
    # Per cohort: (months lived, None while live; subscriptions; the youngest one's age).
    by_cohort: dict[date, list[tuple[int | None, int, int]]] = defaultdict(list)
    for cohort, lived, count, observed in rows:
        by_cohort[cohort].append((lived, count, observed))
    survivors = {}
    for cohort, groups in sorted(by_cohort.items()):
        horizon = min(observed for _, _, observed in groups)
        survivors[cohort] = [
            sum(count for lived, count, _ in groups if lived is None or lived >= k)
            for k in range(horizon + 1)
        ]
    return survivors


def build_cohorts(*, run: PipelineRun) -> int:
    """Replace the as-of date's cohort cells and sBG fit; returns the cells written."""
    cells = activity_cells(run=run)
    survivors = subscription_survivors(run.as_of)
    fit = btyd.fit_sbg(list(survivors.values()))
    for cohort, counts in survivors.items():
        projected = btyd.sbg_survival(fit.params, range(len(counts))) if fit.converged else None
        for period, count in enumerate(counts):
            cells.append(
                CohortRetention(
                    run=run,
                    as_of=run.as_of,
                    basis=CohortBasis.SUBSCRIPTION,
                    cohort=cohort,
                    period=period,
                    size=counts[0],
                    retained=count,
                    projected=None if projected is None else float(projected[period]),
                )
            )
    with transaction.atomic():
        CohortRetention.objects.filter(as_of=run.as_of).delete()
        CohortRetention.objects.bulk_create(cells, batch_size=2000)
        ModelFit.objects.filter(as_of=run.as_of, model=FitModel.SBG).delete()
        if survivors:
            ModelFit.objects.create(
                run=run,
                as_of=run.as_of,
                model=FitModel.SBG,
                scope=SBG_SCOPE,
                params=fit.params,
                log_likelihood=fit.log_likelihood if fit.params else None,
                n_customers=fit.n,
                time_unit="month",
                converged=fit.converged,
                message=fit.message[:255],
                fitted_at=timezone.now(),
            )
    return len(cells)
