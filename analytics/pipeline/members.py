"""Per-member steps: summarise an id range in SQL, fit the models on every summary, score an id
range with numpy and write its MemberMetrics rows in bulk.

Purchases are `purchase` events (journeys.CustomerEvent) that occurred before the end of the
as-of day in the program's timezone. Refunds: a purchase whose order was refunded (a `refund`
event with the same member and order id, by the as-of date) does not count at all, neither as a
purchase day nor as spend; refunds always name the whole order (journeys requires the order id
and the rewards engine takes back all its points). Purchases on one local day are merged into one
purchase day (their amounts added).
"""

from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone

from .. import btyd
from ..models import FitModel, ModelFit, PipelineRun
from ..selectors import analytics_settings
from . import scoring
from .common import copy_in, copy_out, cutoff, execute, program_zone

SCORES_TABLE = "analytics_chunk_scores"
# Sorting and hashing a chunk's (member, day) rows in memory instead of on disk: a chunk of
# 100,000 members with ten purchases each needs about this much.
WORK_MEM = "256MB"

SUMMARISE_DAYS = """
CREATE TEMPORARY TABLE analytics_chunk_days ON COMMIT DROP AS
SELECT e.member_id,
       (e.occurred_at AT TIME ZONE %(tz)s)::date AS day,
       max(e.occurred_at) FILTER (WHERE e.source <> 'system') AS last_at,
       bool_or(e.source <> 'system') AS active,
       bool_or(e.event_type = 'purchase' AND NOT coalesce(r.refunded, false)) AS purchased,
       coalesce(sum(e.amount) FILTER (
           WHERE e.event_type = 'purchase' AND NOT coalesce(r.refunded, false)), 0) AS spend
FROM journeys_customerevent e
LEFT JOIN (
    SELECT DISTINCT member_id, order_id, true AS refunded
    FROM journeys_customerevent
    WHERE event_type = 'refund' AND order_id <> '' AND occurred_at < %(cutoff)s
      AND member_id >= %(lo)s AND member_id < %(hi)s
) r ON e.event_type = 'purchase' AND r.member_id = e.member_id AND r.order_id = e.order_id
WHERE e.member_id >= %(lo)s AND e.member_id < %(hi)s AND e.occurred_at < %(cutoff)s
GROUP BY 1, 2
"""

SUMMARISE_MEMBERS = """
INSERT INTO analytics_stage_member (run_id, member_id, enrolled_at, first_day, last_day,
    purchase_days, total_spend, repeat_spend, last_activity_at)
SELECT %(run)s, m.id, m.enrolled_at, p.first_day, p.last_day, coalesce(p.days, 0),
       coalesce(p.total, 0), coalesce(p.total - p.first_spend, 0), a.last_at
FROM members_member m
LEFT JOIN (
    SELECT member_id, min(day) AS first_day, max(day) AS last_day, count(*) AS days,
           sum(spend) AS total, (array_agg(spend ORDER BY day))[1] AS first_spend
    FROM analytics_chunk_days WHERE purchased GROUP BY member_id
) p ON p.member_id = m.id
LEFT JOIN (
    SELECT member_id, max(last_at) AS last_at FROM analytics_chunk_days WHERE active
    GROUP BY member_id
) a ON a.member_id = m.id
WHERE m.id >= %(lo)s AND m.id < %(hi)s AND m.enrolled_at < %(cutoff)s
"""

SUMMARISE_COHORTS = """
WITH members AS (
    SELECT member_id,
           date_trunc('month', enrolled_at AT TIME ZONE %(tz)s)::date AS enrolled_month,
           date_trunc('month', first_day)::date AS first_month
    FROM analytics_stage_member
    WHERE run_id = %(run)s AND member_id >= %(lo)s AND member_id < %(hi)s
), months AS (
    SELECT member_id, date_trunc('month', day)::date AS month, bool_or(active) AS active,
           bool_or(purchased) AS purchased
    FROM analytics_chunk_days GROUP BY 1, 2
)
INSERT INTO analytics_stage_cohort (run_id, chunk_lo, basis, cohort, period, members)
SELECT %(run)s, %(lo)s, 'enrollment', enrolled_month, -1, count(*) FROM members
GROUP BY enrolled_month
UNION ALL
SELECT %(run)s, %(lo)s, 'first_purchase', first_month, -1, count(*) FROM members
WHERE first_month IS NOT NULL GROUP BY first_month
UNION ALL
SELECT %(run)s, %(lo)s, 'enrollment', c.enrolled_month,
       ((extract(year from d.month) - extract(year from c.enrolled_month)) * 12
           + extract(month from d.month) - extract(month from c.enrolled_month))::int,
       count(*)
FROM months d JOIN members c USING (member_id)
WHERE d.active AND d.month >= c.enrolled_month
GROUP BY 4, 5
UNION ALL
SELECT %(run)s, %(lo)s, 'first_purchase', c.first_month,
       ((extract(year from d.month) - extract(year from c.first_month)) * 12
           + extract(month from d.month) - extract(month from c.first_month))::int,
       count(*)
FROM months d JOIN members c USING (member_id)
WHERE d.purchased AND d.month >= c.first_month
GROUP BY 4, 5
"""

SUMMARY_COLUMNS = ["member_id", "x", "recency", "T", "repeat_spend", "total", "since_last", "days"]
SUMMARY_SELECT = """
SELECT member_id, purchase_days - 1, last_day - first_day, %(as_of)s::date - first_day,
       repeat_spend, total_spend, %(as_of)s::date - last_day, purchase_days
FROM analytics_stage_member
WHERE run_id = %(run)s AND purchase_days > 0 {extra}
"""


def _chunk_params(run: PipelineRun, lo: int, hi: int) -> dict:
    zone = program_zone()
    return {
        "run": run.pk,
        "lo": lo,
        "hi": hi,
        "tz": str(zone.key),
        "cutoff": cutoff(run.as_of, zone),
        "as_of": run.as_of,
    }


def summarise_range(*, run: PipelineRun, lo: int, hi: int) -> int:
    """Write the summary of members lo <= id < hi into the run's working tables (replacing what
    an earlier attempt of this chunk wrote); returns the number of members."""
    params = _chunk_params(run, lo, hi)
    with transaction.atomic():
        execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        execute(
            "DELETE FROM analytics_stage_member WHERE run_id = %(run)s "
            "AND member_id >= %(lo)s AND member_id < %(hi)s",
            params,
        )
        execute(
            "DELETE FROM analytics_stage_cohort WHERE run_id = %(run)s AND chunk_lo = %(lo)s",
            params,
        )
        execute("DROP TABLE IF EXISTS analytics_chunk_days")
        execute(SUMMARISE_DAYS, params)
        members = execute(SUMMARISE_MEMBERS, params)
        execute(SUMMARISE_COHORTS, params)
        execute("DROP TABLE analytics_chunk_days")
    return members


def read_summary(run: PipelineRun, lo: int | None = None, hi: int | None = None):
    """The purchasing members' summaries (one range, or all) as a DataFrame."""
    extra = ""
    params = {"run": run.pk, "as_of": run.as_of}
    if lo is not None:
        extra = "AND member_id >= %(lo)s AND member_id < %(hi)s"
        params.update(lo=lo, hi=hi)
    text = copy_out(SUMMARY_SELECT.format(extra=extra), params)
    frame = pd.read_csv(text, header=None, names=SUMMARY_COLUMNS)
    return frame


def to_summary(frame) -> scoring.Summary:
    x = frame["x"].to_numpy(dtype=float)
    repeat = frame["repeat_spend"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where(x > 0, repeat / np.maximum(x, 1), 0.0)
    return scoring.Summary(
        x=x,
        recency=frame["recency"].to_numpy(dtype=float),
        T=frame["T"].to_numpy(dtype=float),
        m=m,
        total=frame["total"].to_numpy(dtype=float),
        since_last=frame["since_last"].to_numpy(dtype=float),
        purchase_days=frame["days"].to_numpy(dtype=np.int64),
    )


def fit_models(*, run: PipelineRun) -> dict:
    """Fit BG/NBD (weeks) and Gamma-Gamma on every purchasing member's summary, store the fits
    and the run's scoring cut-offs; returns the cut-offs."""
    started = time.monotonic()
    summary = to_summary(read_summary(run))
    loaded = time.monotonic()
    fits: dict[str, btyd.Fit] = {}
    if len(summary.x):
        (x, t_x, T), weights = btyd.collapse(
            summary.x, summary.recency / scoring.DAYS_PER_WEEK, summary.T / scoring.DAYS_PER_WEEK
        )
        fits[FitModel.BG_NBD] = btyd.fit_bgnbd(x, t_x, T, weights)
        repeat = (summary.x > 0) & (summary.m > 0)
        (gx, gm), gweights = btyd.collapse(summary.x[repeat], summary.m[repeat])
        fits[FitModel.GAMMA_GAMMA] = btyd.fit_gamma_gamma(gx, gm, gweights)
    fitted = time.monotonic()
    usable = {model: fit.params for model, fit in fits.items() if fit.converged}
    settings_row = analytics_settings()
    cutoffs = scoring.run_cutoffs(
        summary,
        bgnbd=usable.get(FitModel.BG_NBD),
        gg=usable.get(FitModel.GAMMA_GAMMA),
        settings_row=settings_row,
    )
    now = timezone.now()
    with transaction.atomic():
        ModelFit.objects.filter(
            as_of=run.as_of, model__in=[FitModel.BG_NBD, FitModel.GAMMA_GAMMA]
        ).delete()
        ModelFit.objects.bulk_create(
            ModelFit(
                run=run,
                as_of=run.as_of,
                model=model,
                scope="",
                params=fit.params,
                log_likelihood=fit.log_likelihood if fit.params else None,
                n_customers=fit.n,
                time_unit="week" if model == FitModel.BG_NBD else "purchase",
                converged=fit.converged,
                message=fit.message[:255],
                fitted_at=now,
            )
            for model, fit in fits.items()
        )
        details = dict(run.details)
        details["cutoffs"] = cutoffs
        details["models"] = usable
        details["discount_rate"] = str(settings_row.clv_discount_rate)
        details.setdefault("seconds", {}).update(
            {"read_summary": round(loaded - started, 3), "fit": round(fitted - loaded, 3)}
        )
        run.details = details
        PipelineRun.objects.filter(pk=run.pk).update(details=details)
    return cutoffs


METRIC_COLUMNS = [
    "member_id",
    "p_alive",
    "expected_purchases_90d",
    "expected_purchases_12m",
    "expected_order_value",
    "clv_12m",
    "clv_band",
    "churn_risk",
    "recency_score",
    "frequency_score",
    "monetary_score",
    "rfm_segment",
]

CREATE_SCORES = """
CREATE TEMPORARY TABLE analytics_chunk_scores (
    member_id bigint PRIMARY KEY, p_alive float8, expected_purchases_90d float8,
    expected_purchases_12m float8, expected_order_value numeric(12, 2), clv_12m numeric(14, 2),
    clv_band varchar(10), churn_risk varchar(12), recency_score smallint,
    frequency_score smallint, monetary_score smallint, rfm_segment varchar(20)
) ON COMMIT DROP
"""

WRITE_METRICS = """
INSERT INTO analytics_membermetrics (
    member_id, as_of, first_purchase_on, last_purchase_on, last_activity_at, purchase_days,
    frequency, recency_days, tenure_days, monetary, total_spend, p_alive,
    expected_purchases_90d, expected_purchases_12m, expected_order_value, clv_12m, clv_band,
    churn_risk, recency_score, frequency_score, monetary_score, rfm_segment)
SELECT s.member_id, %(as_of)s, s.first_day, s.last_day, s.last_activity_at, s.purchase_days,
       greatest(s.purchase_days - 1, 0), coalesce(s.last_day - s.first_day, 0),
       coalesce(%(as_of)s::date - s.first_day, 0),
       CASE WHEN s.purchase_days > 1 THEN round(s.repeat_spend / (s.purchase_days - 1), 2)
            ELSE 0 END,
       s.total_spend, c.p_alive, c.expected_purchases_90d, c.expected_purchases_12m,
       c.expected_order_value, c.clv_12m, coalesce(c.clv_band, 'none'),
       coalesce(c.churn_risk, 'no_purchase'), coalesce(c.recency_score, 0),
       coalesce(c.frequency_score, 0), coalesce(c.monetary_score, 0),
       coalesce(c.rfm_segment, 'no_purchase')
FROM analytics_stage_member s
LEFT JOIN analytics_chunk_scores c ON c.member_id = s.member_id
WHERE s.run_id = %(run)s AND s.member_id >= %(lo)s AND s.member_id < %(hi)s
ON CONFLICT (member_id) DO UPDATE SET
    as_of = EXCLUDED.as_of, first_purchase_on = EXCLUDED.first_purchase_on,
    last_purchase_on = EXCLUDED.last_purchase_on, last_activity_at = EXCLUDED.last_activity_at,
    purchase_days = EXCLUDED.purchase_days, frequency = EXCLUDED.frequency,
    recency_days = EXCLUDED.recency_days, tenure_days = EXCLUDED.tenure_days,
    monetary = EXCLUDED.monetary, total_spend = EXCLUDED.total_spend,
    p_alive = EXCLUDED.p_alive, expected_purchases_90d = EXCLUDED.expected_purchases_90d,
    expected_purchases_12m = EXCLUDED.expected_purchases_12m,
    expected_order_value = EXCLUDED.expected_order_value, clv_12m = EXCLUDED.clv_12m,
    clv_band = EXCLUDED.clv_band, churn_risk = EXCLUDED.churn_risk,
    recency_score = EXCLUDED.recency_score, frequency_score = EXCLUDED.frequency_score,
    monetary_score = EXCLUDED.monetary_score, rfm_segment = EXCLUDED.rfm_segment
"""

DELETE_STALE = """
DELETE FROM analytics_membermetrics mm
WHERE mm.member_id >= %(lo)s AND mm.member_id < %(hi)s AND NOT EXISTS (
    SELECT 1 FROM analytics_stage_member s WHERE s.run_id = %(run)s AND s.member_id = mm.member_id)
"""


def _csv(scores: dict[str, np.ndarray], member_ids: np.ndarray) -> io.StringIO:
    frame = pd.DataFrame({"member_id": member_ids})
    for name in METRIC_COLUMNS[1:]:
        frame[name] = scores[name]
    for name in ("expected_order_value", "clv_12m"):
        frame[name] = frame[name].round(2)
    buffer = io.StringIO()
    frame.to_csv(buffer, header=False, index=False, float_format="%.10g")
    buffer.seek(0)
    return buffer


def score_range(*, run: PipelineRun, lo: int, hi: int) -> int:
    """Score members lo <= id < hi and upsert their MemberMetrics (one row per member, from the
    latest run); returns the rows written."""
    details = run.details
    settings_row = analytics_settings()
    models = details.get("models", {})
    frame = read_summary(run, lo, hi)
    summary = to_summary(frame)
    scores = scoring.score(
        summary,
        bgnbd=models.get(FitModel.BG_NBD),
        gg=models.get(FitModel.GAMMA_GAMMA),
        cutoffs=details["cutoffs"],
        settings_row=settings_row,
    )
    params = _chunk_params(run, lo, hi)
    with transaction.atomic():
        execute(f"DROP TABLE IF EXISTS {SCORES_TABLE}")
        execute(CREATE_SCORES)
        if len(frame):
            copy_in(SCORES_TABLE, METRIC_COLUMNS, _csv(scores, frame["member_id"].to_numpy()))
        written = execute(WRITE_METRICS, params)
        execute(DELETE_STALE, params)
        execute(f"DROP TABLE {SCORES_TABLE}")
    return written


def member_id_ranges(*, per_chunk: int) -> list[tuple[int, int]]:
    """Half-open id ranges [lo, hi) covering every member id (members enrolled after the as-of
    date fall in a range too, so a rerun for a past date removes their newer rows)."""
    from members.models import Member

    ids = Member.objects.values_list("pk", flat=True)
    low = ids.order_by("pk").first()
    high = ids.order_by("-pk").first()
    if low is None:
        return []
    return [(lo, min(lo + per_chunk, high + 1)) for lo in range(low, high + 1, per_chunk)]
