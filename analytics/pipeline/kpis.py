"""Program KPIs as of the end of a day in the program's timezone, from the raw tables (so any past
day can be computed, and recomputed with the same result).

Windows are whole local days ending with the as-of day: "30 days" is the as-of day and the 29
before it. "Active" means at least one event the member caused (any event type; events the
platform generates itself, source `system`, such as abandoned carts, do not count). Purchases
exclude refunded orders, as in the per-member figures.

- members: enrolled by the as-of day and not closed by then.
- active_30d / active_90d: members with an event in the last 30 / 90 days.
- retention_rate: the period is 30 days; of the members active in the previous period (days
  31-60 before), the share also active in this one (the last 30 days). churn_rate = 1 - that.
- repeat_purchase_rate: of the members who have ever purchased, the share who purchased on two
  or more local days (all history up to the as-of day).
- purchase_frequency: purchases (orders) per purchasing member in the last 365 days.
- average_order_value: revenue per purchase (order) in the last 30 days.
- redemption_rate: points redeemed over points earned in the last 365 days (earned = earn and
  release rows; reversals of either are netted off their kind; expiries and manual adjustments
  count on neither side).
- points_liability: outstanding points at the end of the day (the sum of the ledger) times the
  program's cost per point.
- enrollments: members enrolled in the last 30 days.
- engagement: events in the last 30 days per member active in them.
- nps / csat: feedback.selectors.satisfaction_summary over the last 90 days.
- subscribers: paid-plan subscriptions live (trialing, active or past due) at the end of the day,
  from the subscription status history.
- subscriber_retention: of the subscriptions live 30 days earlier, the share still live.
- mrr: monthly recurring revenue of the subscriptions active or past due at the end of the day
  (plan price / billing months; trials pay nothing yet).

Ratios are shares (0-1), not percentages, except NPS and CSAT which keep feedback's scale
(-100..100 and 0..100). Undefined values (no purchases, no responses) are None.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from feedback.selectors import satisfaction_summary
from rewards.selectors import program_settings

from ..models import Kpi
from .common import cutoff, fetch_one, program_zone, window_start

CENT = Decimal("0.01")
EPOCH = datetime(1900, 1, 1, tzinfo=UTC)
SCALE = Decimal("0.000001")

ACTIVITY = """
SELECT count(*) FILTER (WHERE in_30),
       count(*),
       count(*) FILTER (WHERE in_prev),
       count(*) FILTER (WHERE in_prev AND in_30),
       coalesce(sum(events_30), 0)
FROM (
    SELECT member_id,
           bool_or(occurred_at >= %(s30)s) AS in_30,
           bool_or(occurred_at >= %(s60)s AND occurred_at < %(s30)s) AS in_prev,
           count(*) FILTER (WHERE occurred_at >= %(s30)s) AS events_30
    FROM journeys_customerevent
    WHERE occurred_at >= %(s90)s AND occurred_at < %(end)s AND source <> 'system'
    GROUP BY member_id
) per_member
"""

VALID_PURCHASES = """
FROM journeys_customerevent e
WHERE e.event_type = 'purchase' AND e.occurred_at >= %(start)s AND e.occurred_at < %(end)s
  AND NOT EXISTS (
      SELECT 1 FROM journeys_customerevent r
      WHERE r.event_type = 'refund' AND r.member_id = e.member_id AND r.order_id <> ''
        AND r.order_id = e.order_id AND r.occurred_at < %(end)s)
"""

REPEAT_RATE = f"""
SELECT count(*) FILTER (WHERE days >= 2), count(*)
FROM (
    SELECT e.member_id, count(DISTINCT (e.occurred_at AT TIME ZONE %(tz)s)::date) AS days
    {VALID_PURCHASES}
    GROUP BY e.member_id
) per_member
"""  # noqa: S608

ORDERS = f"SELECT count(*), count(DISTINCT e.member_id), sum(e.amount) {VALID_PURCHASES}"  # noqa: S608

POINTS = """
SELECT
    coalesce(sum(t.points) FILTER (WHERE t.kind IN ('earn', 'release')), 0)
      + coalesce(sum(t.points) FILTER (WHERE t.kind = 'reverse' AND o.kind IN ('earn', 'release')), 0),
    - coalesce(sum(t.points) FILTER (WHERE t.kind = 'redeem'), 0)
      - coalesce(sum(t.points) FILTER (WHERE t.kind = 'reverse' AND o.kind = 'redeem'), 0)
FROM rewards_pointstransaction t
LEFT JOIN rewards_pointstransaction o ON o.id = t.reverses_id
WHERE t.occurred_at >= %(s365)s AND t.occurred_at < %(end)s
"""  # noqa: E501

SUBSCRIPTIONS = """
SELECT count(*) FILTER (WHERE now_status.to_status IN ('trialing', 'active', 'past_due')),
       count(*) FILTER (WHERE then_status.to_status IN ('trialing', 'active', 'past_due')),
       count(*) FILTER (WHERE then_status.to_status IN ('trialing', 'active', 'past_due')
                          AND now_status.to_status IN ('trialing', 'active', 'past_due')),
       coalesce(sum(p.price / coalesce(nullif(p.billing_period_months, 0), 1))
                FILTER (WHERE now_status.to_status IN ('active', 'past_due')), 0)
FROM rewards_subscription s
JOIN rewards_membershipplan p ON p.id = s.plan_id
LEFT JOIN LATERAL (
    SELECT to_status FROM rewards_subscriptionevent
    WHERE subscription_id = s.id AND occurred_at < %(end)s
    ORDER BY occurred_at DESC, id DESC LIMIT 1
) now_status ON true
LEFT JOIN LATERAL (
    SELECT to_status FROM rewards_subscriptionevent
    WHERE subscription_id = s.id AND occurred_at < %(s30)s
    ORDER BY occurred_at DESC, id DESC LIMIT 1
) then_status ON true
WHERE s.started_at < %(end)s
"""


def _ratio(numerator, denominator) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(SCALE)


def compute_kpis(*, as_of: date, stage_run_id: int | None = None) -> dict[str, Decimal | None]:
    """Every KPI as of the end of `as_of`. `stage_run_id` lets the nightly run take the repeat
    purchase rate from its own per-member summary (same definition, no second full scan)."""
    zone = program_zone()
    settings_row = program_settings()
    end = cutoff(as_of, zone)
    p = {
        "end": end,
        "tz": str(zone.key),
        "s30": window_start(as_of, 30, zone),
        "s60": window_start(as_of, 60, zone),
        "s90": window_start(as_of, 90, zone),
        "s365": window_start(as_of, 365, zone),
    }
    values: dict[str, Decimal | None] = {}

    (members,) = fetch_one(
        "SELECT count(*) FROM members_member WHERE enrolled_at < %(end)s "
        "AND (closed_at IS NULL OR closed_at >= %(end)s)",
        p,
    )
    values[Kpi.MEMBERS] = Decimal(members)
    (enrollments,) = fetch_one(
        "SELECT count(*) FROM members_member WHERE enrolled_at >= %(s30)s "
        "AND enrolled_at < %(end)s",
        p,
    )
    values[Kpi.ENROLLMENTS] = Decimal(enrollments)

    active_30, active_90, previous, retained, events_30 = fetch_one(ACTIVITY, p)
    values[Kpi.ACTIVE_30D] = Decimal(active_30)
    values[Kpi.ACTIVE_90D] = Decimal(active_90)
    retention = _ratio(retained, previous)
    values[Kpi.RETENTION_RATE] = retention
    values[Kpi.CHURN_RATE] = None if retention is None else (1 - retention).quantize(SCALE)
    values[Kpi.ENGAGEMENT] = _ratio(events_30, active_30)

    if stage_run_id is not None:
        repeaters, purchasers = fetch_one(
            "SELECT count(*) FILTER (WHERE purchase_days >= 2), count(*) "
            "FROM analytics_stage_member WHERE run_id = %(run)s AND purchase_days > 0",
            {"run": stage_run_id},
        )
    else:
        repeaters, purchasers = fetch_one(REPEAT_RATE, {**p, "start": EPOCH})
    values[Kpi.REPEAT_PURCHASE_RATE] = _ratio(repeaters, purchasers)

    orders, buyers, _ = fetch_one(ORDERS, {**p, "start": p["s365"]})
    values[Kpi.PURCHASE_FREQUENCY] = _ratio(orders, buyers)
    orders_30, _, revenue_30 = fetch_one(ORDERS, {**p, "start": p["s30"]})
    values[Kpi.AVERAGE_ORDER_VALUE] = (
        (revenue_30 / orders_30).quantize(CENT) if orders_30 and revenue_30 is not None else None
    )

    earned, redeemed = fetch_one(POINTS, p)
    values[Kpi.REDEMPTION_RATE] = _ratio(redeemed, earned) if earned and earned > 0 else None
    (outstanding,) = fetch_one(
        "SELECT coalesce(sum(points), 0) FROM rewards_pointstransaction "
        "WHERE occurred_at < %(end)s",
        p,
    )
    values[Kpi.POINTS_LIABILITY] = (Decimal(outstanding) * settings_row.cost_per_point).quantize(
        CENT
    )

    satisfaction = satisfaction_summary(start=p["s90"], end=end)
    values[Kpi.NPS] = _decimal(satisfaction.get("nps"))
    values[Kpi.CSAT] = _decimal(satisfaction.get("csat"))

    # Live: trialing, active or past due; paying (MRR): active or past due.
    live_now, live_then, kept, mrr = fetch_one(SUBSCRIPTIONS, p)
    values[Kpi.SUBSCRIBERS] = Decimal(live_now)
    values[Kpi.SUBSCRIBER_RETENTION] = _ratio(kept, live_then)
    values[Kpi.MRR] = mrr.quantize(CENT)
    return values


def _decimal(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def days_back(as_of: date, days: int) -> list[date]:
    """`days` as-of dates ending with `as_of`, oldest first."""
    return [as_of - timedelta(days=offset) for offset in range(days - 1, -1, -1)]
