"""Demo data for rewards: the program (rules, tiers, rewards, the Plus plan) and a plausible
ledger history for the demo members. Idempotent: members that already have a points account
are left alone. The history is simulated in memory and written with bulk inserts, keeping
balance == sum(transactions) and buckets consistent with FIFO consumption."""

import io
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from members.models import Member

from .models import (
    EarningRule,
    EarningRuleKind,
    ExpiryPolicy,
    MembershipPlan,
    PointsAccount,
    PointsBucket,
    PointsTransaction,
    Purchase,
    Redemption,
    Reward,
    RewardKind,
    RuleAward,
    Subscription,
    SubscriptionEvent,
    SubscriptionPayment,
    SubscriptionStatus,
    Tier,
    TierChange,
    TransactionKind,
)
from .selectors import program_settings
from .services import catalogue, clock

TIERS = [
    ("Bronze", 1, 0, "1.00", "Collect points on every purchase.", 12),
    ("Silver", 2, 1000, "1.25", "25% extra points, birthday gift.", 12),
    ("Gold", 3, 3000, "1.50", "50% extra points, free shipping, VIP events.", 12),
    ("Platinum", 4, 7500, "2.00", "Double points, personal shopper, priority support.", 12),
]
REWARDS = [
    ("Free coffee", RewardKind.FREE_PRODUCT, 250, None, None, None, None),
    ("Partner cinema: 15% off", RewardKind.COUPON, 400, None, None, None, None),
    ("€5 off your next order", RewardKind.MONEY_OFF, 500, "5.00", None, None, None),
    ("€10 off your next order", RewardKind.MONEY_OFF, 950, "10.00", None, None, None),
    ("Canvas tote bag", RewardKind.FREE_PRODUCT, 1200, None, 150, 2, None),
    ("€25 off your next order", RewardKind.MONEY_OFF, 2300, "25.00", None, None, "Silver"),
    ("VIP tasting evening", RewardKind.EXPERIENCE, 5000, None, 20, 1, "Gold"),
    ("Weekend getaway", RewardKind.EXPERIENCE, 15000, None, 5, 1, "Platinum"),
]
SPENDABLE = [
    ("Free coffee", 250),
    ("€5 off your next order", 500),
    ("€10 off your next order", 950),
]


def seed_rewards(*, rng: random.Random, stdout) -> None:
    program = _seed_program(rng)
    added = _seed_ledger(rng=rng, program=program)
    stdout.write(f"rewards: ledger history for {added} members")


def _seed_program(rng: random.Random) -> dict:
    settings_row = program_settings()
    if settings_row.name == "Loyalty program":
        settings_row.name = "Demo Rewards"
        settings_row.expiry_policy = ExpiryPolicy.ROLLING_MONTHS
        settings_row.expiry_months = 24
        settings_row.save()
    tiers = {}
    for name, rank, threshold, multiplier, perks, months in TIERS:
        tiers[name], _ = Tier.objects.get_or_create(
            name=name,
            defaults={
                "rank": rank,
                "points_threshold": threshold,
                "spend_threshold": Decimal(threshold),
                "earn_multiplier": Decimal(multiplier),
                "perks": perks,
                "guaranteed_months": months,
            },
        )
    plan, _ = MembershipPlan.objects.get_or_create(
        name="Plus",
        defaults={
            "description": "50% more points, Silver status and a monthly bonus.",
            "price": Decimal("4.99"),
            "currency": "EUR",
            "billing_period_months": 1,
            "trial_days": 14,
            "earn_multiplier": Decimal("1.50"),
            "renewal_bonus_points": 100,
            "granted_tier": tiers["Silver"],
        },
    )
    rules = {}
    for name, kind, extra in [
        ("Points per euro", EarningRuleKind.PURCHASE, {"min_amount": Decimal("5")}),
        (
            "Extra point per euro on shoes",
            EarningRuleKind.PURCHASE,
            {"product_category": "shoes"},
        ),
        (
            "Welcome bonus",
            EarningRuleKind.FIXED,
            {"event_type": "signup", "points": 200, "max_count_lifetime": 1},
        ),
        (
            "Birthday bonus",
            EarningRuleKind.FIXED,
            {"event_type": "birthday", "points": 250, "max_count_per_month": 1},
        ),
        (
            "Product review",
            EarningRuleKind.FIXED,
            {"event_type": "review", "points": 50, "max_count_per_day": 1},
        ),
        (
            "Share on social media",
            EarningRuleKind.FIXED,
            {"event_type": "share", "points": 20, "max_count_per_week": 3},
        ),
        (
            "Survey completed",
            EarningRuleKind.FIXED,
            {"event_type": "survey_completed", "points": 100, "max_points_per_month": 300},
        ),
        (
            "Double points in the app",
            EarningRuleKind.MULTIPLIER,
            {"factor": Decimal("2"), "channel": "app", "stackable": False},
        ),
    ]:
        rules[name], _ = EarningRule.objects.get_or_create(name=name, kind=kind, defaults=extra)
    rewards = {}
    for name, kind, cost, value, stock, limit, min_tier in REWARDS:
        rewards[name], _ = Reward.objects.get_or_create(
            name=name,
            defaults={
                "kind": kind,
                "points_cost": cost,
                "value": Decimal(value) if value else None,
                "stock": stock,
                "per_member_limit": limit,
                "min_tier": tiers[min_tier] if min_tier else None,
                "description": f"{name}, for {cost} points.",
            },
        )
    coupon = rewards["Partner cinema: 15% off"]
    if not coupon.codes.exists():
        catalogue.add_reward_codes(
            reward=coupon,
            codes=[f"CINE-{rng.randrange(16**8):08X}" for _ in range(300)],
        )
    return {"tiers": tiers, "plan": plan, "rules": rules, "rewards": rewards}


@dataclass
class _Bucket:
    txn: int
    points: int
    remaining: int
    earned_at: datetime
    expires_at: datetime | None


@dataclass
class _Sim:
    """One member's ledger, simulated in memory in time order."""

    member_id: int
    expiry_months: int
    zone: object
    txns: list[dict] = field(default_factory=list)
    buckets: list[_Bucket] = field(default_factory=list)
    balance: int = 0
    lifetime: int = 0
    last_activity: datetime | None = None

    def _add(self, kind, points, at, reason, qualifying=0, **extra) -> int:
        self.balance += points
        self.lifetime += qualifying
        self.txns.append(
            {
                "kind": kind,
                "points": points,
                "qualifying_points": qualifying,
                "balance_after": self.balance,
                "reason": reason,
                "occurred_at": at,
                "created_at": at,
                "idempotency_key": f"demo:{self.member_id}:{len(self.txns)}",
                **extra,
            }
        )
        return len(self.txns) - 1

    def expire_until(self, moment: datetime) -> None:
        for bucket in sorted(self.buckets, key=lambda b: (b.expires_at or moment, b.earned_at)):
            if bucket.remaining and bucket.expires_at and bucket.expires_at <= moment:
                self._add(
                    TransactionKind.EXPIRE,
                    -bucket.remaining,
                    bucket.expires_at,
                    "Points expired",
                    source="expiry",
                )
                bucket.remaining = 0

    def earn(self, points, at, reason, *, qualifying=True, **extra) -> int:
        self.expire_until(at)
        index = self._add(
            TransactionKind.EARN, points, at, reason, points if qualifying else 0, **extra
        )
        expires = clock.add_months_local(at, self.expiry_months, self.zone)
        self.buckets.append(_Bucket(index, points, points, at, expires))
        self.last_activity = at
        return index

    def spend(self, points, at, reason, **extra) -> int:
        self.expire_until(at)
        left = points
        for bucket in sorted(self.buckets, key=lambda b: (b.expires_at, b.earned_at)):
            take = min(bucket.remaining, left)
            bucket.remaining -= take
            left -= take
        self.last_activity = at
        return self._add(TransactionKind.REDEEM, -points, at, reason, **extra)


def _seed_ledger(*, rng: random.Random, program: dict) -> int:
    members = list(
        Member.objects.filter(external_id__startswith="DEMO-", points_account__isnull=True)
        .order_by("external_id")
        .values_list("id", "external_id", "enrolled_at")
    )
    if not members:
        return 0
    settings_row = program_settings()
    zone = clock.program_zone(settings_row)
    now = timezone.now()
    tiers = sorted(program["tiers"].values(), key=lambda t: t.rank)
    plan = program["plan"]
    rules = program["rules"]
    rewards = program["rewards"]
    window_start = clock.add_months_local(now, -(settings_row.tier_window_months or 1200), zone)

    sims: list[tuple[_Sim, dict]] = []
    for member_id, external_id, enrolled_at in members:
        sim = _Sim(member_id, settings_row.expiry_months, zone)
        extra: dict = {"purchases": [], "redemptions": [], "rule_awards": [], "sub": None}
        welcome = sim.earn(
            200,
            enrolled_at,
            "Signup",
            source="event:signup",
            breakdown=_lines(rules, "Welcome bonus", 200),
        )
        extra["rule_awards"].append((rules["Welcome bonus"], welcome, 200, enrolled_at))
        # Purchases per month vary a lot between people; some stop buying altogether.
        rate = 6.0 if external_id == "DEMO-00001" else rng.lognormvariate(-0.6, 0.9)
        stop = now if rng.random() < 0.7 else enrolled_at + (now - enrolled_at) * rng.random()
        subscribed = external_id == "DEMO-00001" or rng.random() < 0.08
        sub_start = (
            enrolled_at + (now - enrolled_at) * rng.uniform(0.2, 0.9) if subscribed else None
        )
        sub_end = None
        if sub_start and external_id != "DEMO-00001" and rng.random() < 0.35:
            sub_end = sub_start + timedelta(days=rng.randint(40, 300))
            sub_end = min(sub_end, now - timedelta(days=1))
        events = []
        moment = enrolled_at
        while True:
            moment += timedelta(days=rng.expovariate(rate / 30.0))
            if moment >= min(stop, now):
                break
            events.append(("purchase", moment))
        if sub_start:
            paid = sub_start + timedelta(days=plan.trial_days)
            renewal = 0
            while paid < (sub_end or now):
                events.append(("payment", paid, renewal))
                paid = clock.add_months_local(paid, plan.billing_period_months, zone)
                renewal += 1
            extra["sub"] = (sub_start, sub_end, paid)
        events.sort(key=lambda e: e[1])
        for event in events:
            if event[0] == "payment":
                _, at, renewal = event
                extra.setdefault("payments", []).append(at)
                if renewal:
                    sim.earn(
                        plan.renewal_bonus_points,
                        at,
                        "Plus renewal bonus",
                        qualifying=False,
                        source="plan",
                        source_ref=f"DEMO-PAY-{member_id}-{renewal}",
                    )
                continue
            at = event[1]
            amount = Decimal(str(round(min(400.0, rng.lognormvariate(3.6, 0.6)), 2)))
            order_id = f"DEMO-ORD-{member_id}-{len(extra['purchases']) + 1}"
            base = int(amount) if amount >= 5 else 0
            if not base:
                extra["purchases"].append((order_id, amount, at, 0))
                continue
            lines = [("Points per euro", base, rules["Points per euro"].pk)]
            if sub_start and sub_start <= at < (sub_end or now):
                lines.append(("Plus plan bonus", base // 2, None))
            points = sum(p for _, p, _ in lines)
            index = sim.earn(
                points,
                at,
                f"Purchase {order_id}",
                source="event:purchase",
                source_ref=order_id,
                breakdown={
                    "event_type": "purchase",
                    "amount": str(amount),
                    "lines": [
                        {"rule_id": rid, "rule_name": name, "points": p, "note": ""}
                        for name, p, rid in lines
                    ],
                },
            )
            extra["rule_awards"].append((rules["Points per euro"], index, base, at))
            extra["purchases"].append((order_id, amount, at, points))
            if rng.random() < 0.18:
                affordable = [(n, c) for n, c in SPENDABLE if c <= sim.balance]
                if affordable:
                    name, cost = affordable[-1]
                    at_redeem = at + timedelta(hours=rng.randint(1, 72))
                    if at_redeem < now:
                        index = sim.spend(
                            cost,
                            at_redeem,
                            f"Redeemed {name}",
                            source="redemption",
                            source_ref=str(rewards[name].pk),
                        )
                        extra["redemptions"].append((rewards[name], index, cost, at_redeem))
        sim.expire_until(now)
        sims.append((sim, extra))

    with transaction.atomic():
        _write(sims, rng=rng, tiers=tiers, plan=plan, window_start=window_start, now=now)
    return len(sims)


def _write(sims, *, rng, tiers, plan, window_start, now) -> None:
    """Insert the simulated histories with ids allocated up front (COPY on PostgreSQL)."""
    account_ids = _ids(PointsAccount, len(sims))
    txn_ids = iter(_ids(PointsTransaction, sum(len(sim.txns) for sim, _ in sims)))
    bucket_ids = iter(_ids(PointsBucket, sum(len(sim.buckets) for sim, _ in sims)))
    accounts, txns, buckets, purchases, redemptions, awards, changes, subs = ([] for _ in range(8))
    for account_id, (sim, extra) in zip(account_ids, sims, strict=True):
        mine = [next(txn_ids) for _ in sim.txns]
        tier, since = _tier_for(sim, tiers, window_start)
        granted = plan.granted_tier if extra["sub"] and extra["sub"][1] is None else None
        if granted and (tier is None or granted.rank > tier.rank):
            tier, since = granted, extra["sub"][0]
        accounts.append(
            (
                account_id,
                sim.member_id,
                sim.balance,
                0,
                sim.lifetime,
                tier.pk if tier else None,
                since,
                sim.last_activity,
                sim.txns[0]["created_at"],
                now,
            )
        )
        if tier:
            changes.append((sim.member_id, None, tier.pk, since, TierChange.Cause.QUALIFIED))
        for txn_id, row in zip(mine, sim.txns, strict=True):
            txns.append(
                (
                    txn_id,
                    sim.member_id,
                    account_id,
                    row["kind"],
                    row["points"],
                    0,
                    row["qualifying_points"],
                    row["balance_after"],
                    row["reason"],
                    row.get("source", ""),
                    row.get("source_ref", ""),
                    row["idempotency_key"],
                    row["occurred_at"],
                    row["created_at"],
                    json.dumps(row.get("breakdown", {})),
                )
            )
        for bucket in sim.buckets:
            buckets.append(
                (
                    next(bucket_ids),
                    account_id,
                    sim.member_id,
                    mine[bucket.txn],
                    bucket.points,
                    bucket.remaining,
                    bucket.earned_at,
                    bucket.expires_at,
                    bucket.earned_at,
                    False,
                    True,
                )
            )
        purchases += [
            (sim.member_id, order_id, amount, "EUR", rng.choice(["web", "pos", "app"]), at, pts)
            for order_id, amount, at, pts in extra["purchases"]
        ]
        redemptions += [
            (
                sim.member_id,
                reward.pk,
                cost,
                "completed",
                catalogue.generate_code(),
                mine[index],
                f"demo-redemption:{sim.member_id}:{index}",
                at,
                "",
            )
            for reward, index, cost, at in extra["redemptions"]
        ]
        awards += [
            (rule.pk, sim.member_id, mine[index], pts, at)
            for rule, index, pts, at in extra["rule_awards"]
        ]
        if extra["sub"]:
            subs.append((sim.member_id, extra["sub"], extra.get("payments", [])))
    _insert(
        PointsAccount,
        "id member_id balance pending lifetime_earned tier_id tier_since last_activity_at "
        "created_at updated_at",
        accounts,
    )
    _insert(
        PointsTransaction,
        "id member_id account_id kind points pending_points qualifying_points balance_after "
        "reason source source_ref idempotency_key occurred_at created_at breakdown",
        txns,
    )
    _insert(
        PointsBucket,
        "id account_id member_id transaction_id points remaining earned_at expires_at "
        "available_at pending qualifying",
        buckets,
    )
    _insert(Purchase, "member_id order_id amount currency channel occurred_at points", purchases)
    _insert(
        Redemption,
        "member_id reward_id points status code transaction_id idempotency_key created_at "
        "cancel_reason",
        redemptions,
    )
    _insert(RuleAward, "rule_id member_id transaction_id points awarded_at", awards)
    _insert(TierChange, "member_id from_tier_id to_tier_id changed_at cause", changes)
    _write_subscriptions(subs, plan, now)


def _ids(model, count: int) -> list[int]:
    """Primary keys for rows about to be inserted, so related rows can point at them."""
    if not count:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [table, count],
            )
            return [row[0] for row in cursor.fetchall()]
    start = (model.objects.aggregate(top=Max("id"))["top"] or 0) + 1
    return list(range(start, start + count))


def _copy_value(value) -> str:
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, str):
        if any(ch in value for ch in "\\\t\n\r"):
            value = (
                value.replace("\\", "\\\\")
                .replace("\t", "\\t")
                .replace("\n", "\\n")
                .replace("\r", "\\r")
            )
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _insert(model, columns: str, rows: list[tuple]) -> None:
    """Insert plain rows: COPY on PostgreSQL (fast at demo scale), bulk_create elsewhere."""
    if not rows:
        return
    names = columns.split()
    with connection.cursor() as cursor:
        if hasattr(cursor.cursor, "copy_expert"):  # psycopg2 on PostgreSQL
            fields = ", ".join(model._meta.get_field(name).column for name in names)
            data = io.StringIO("".join("\t".join(map(_copy_value, row)) + "\n" for row in rows))
            cursor.cursor.copy_expert(f"COPY {model._meta.db_table} ({fields}) FROM STDIN", data)
            return
    model.objects.bulk_create(
        [model(**dict(zip(names, row, strict=True))) for row in rows], batch_size=500
    )


def _lines(rules, name, points) -> dict:
    return {"lines": [{"rule_id": rules[name].pk, "rule_name": name, "points": points, "note": ""}]}


def _tier_for(sim: _Sim, tiers: list[Tier], window_start: datetime):
    """The tier the member holds now, and since when (the moment the window sum crossed it)."""
    recent = sorted(
        (row["occurred_at"], row["qualifying_points"])
        for row in sim.txns
        if row["qualifying_points"] and row["occurred_at"] > window_start
    )
    total = sum(points for _, points in recent)
    reached = [t for t in tiers if total >= t.points_threshold]
    if not reached:
        return None, None
    tier = reached[-1]
    running = 0
    since = sim.txns[0]["occurred_at"]
    for at, points in recent:
        running += points
        if running >= tier.points_threshold:
            since = at
            break
    return tier, since


def _write_subscriptions(subs, plan: MembershipPlan, now: datetime) -> None:
    rows, events, payments = [], [], []
    for member_id, (start, end, next_due), paid in subs:
        trial_end = start + timedelta(days=plan.trial_days)
        period_start = paid[-1] if paid else start
        cancelled = end is not None
        sub = Subscription(
            member_id=member_id,
            plan=plan,
            status=SubscriptionStatus.CANCELLED
            if cancelled
            else (SubscriptionStatus.ACTIVE if paid else SubscriptionStatus.TRIALING),
            current_period_start=period_start,
            current_period_end=next_due if paid else trial_end,
            started_at=start,
            ended_at=end,
        )
        rows.append(sub)
        history = [("", SubscriptionStatus.TRIALING, start, "trial started")]
        if paid:
            history.append(
                (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, paid[0], "paid")
            )
        if cancelled:
            history.append((history[-1][1], SubscriptionStatus.CANCELLED, end, "cancelled"))
        events.append(history)
        payments.append(paid)
    rows = Subscription.objects.bulk_create(rows, batch_size=1000)
    SubscriptionEvent.objects.bulk_create(
        [
            SubscriptionEvent(
                subscription=sub,
                member_id=sub.member_id,
                from_status=a,
                to_status=b,
                occurred_at=at,
                note=note,
            )
            for sub, history in zip(rows, events, strict=True)
            for a, b, at, note in history
        ],
        batch_size=2000,
    )
    SubscriptionPayment.objects.bulk_create(
        [
            SubscriptionPayment(
                subscription=sub,
                amount=plan.price,
                currency=plan.currency,
                paid_at=at,
                payment_ref=f"DEMO-PAY-{sub.member_id}-{n}",
                period_start=at,
                period_end=at + timedelta(days=30 * plan.billing_period_months),
            )
            for sub, paid in zip(rows, payments, strict=True)
            for n, at in enumerate(paid)
        ],
        batch_size=2000,
    )
