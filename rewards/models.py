"""Rewards: program settings, the points ledger, earning rules, tiers, the rewards catalogue,
redemptions, referrals and paid membership plans.

Balances change only through rewards.services.ledger; these models hold the fields, the
constraints that keep the ledger honest, and small methods that need no other table.
"""

from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from members.models import Member


def _default_timezone() -> str:
    return settings.TIME_ZONE


def validate_timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"Unknown timezone: {value}") from exc


class ExpiryPolicy(models.TextChoices):
    NONE = "none", "Points never expire"
    ROLLING_MONTHS = "rolling_months", "Each earning expires N months after it was earned"
    END_OF_YEAR = "end_of_year", "At the end of the calendar year after earning"
    INACTIVITY = "inactivity", "All points after N months without activity"


class Rounding(models.TextChoices):
    DOWN = "down", "Round down"
    NEAREST = "nearest", "Round to nearest"
    UP = "up", "Round up"


class TierBasis(models.TextChoices):
    POINTS = "points", "Qualifying points"
    SPEND = "spend", "Spend"


class ProgramSettings(models.Model):
    """The program's configuration: one row (pk=1), read through selectors.program_settings()."""

    SINGLETON_ID = 1

    name = models.CharField(max_length=100, default="Loyalty program")
    points_name = models.CharField(max_length=30, default="points")
    timezone = models.CharField(
        max_length=64, default=_default_timezone, validators=[validate_timezone]
    )
    currency = models.CharField(max_length=3, default="EUR")
    expiry_policy = models.CharField(
        max_length=20, choices=ExpiryPolicy.choices, default=ExpiryPolicy.NONE
    )
    expiry_months = models.PositiveSmallIntegerField(
        default=12,
        validators=[MinValueValidator(1)],
        help_text="N for the rolling and inactivity policies",
    )
    pending_days = models.PositiveSmallIntegerField(
        default=0, help_text="Days earned points stay pending (e.g. the return window)"
    )
    cost_per_point = models.DecimalField(
        max_digits=10,
        decimal_places=4,
        default=Decimal("0.0100"),
        help_text="What one point is worth in money (for liability and money-off rewards)",
    )
    rounding = models.CharField(
        max_length=10,
        choices=Rounding.choices,
        default=Rounding.DOWN,
        help_text="How money is turned into whole points",
    )
    tier_basis = models.CharField(
        max_length=10, choices=TierBasis.choices, default=TierBasis.POINTS
    )
    tier_window_months = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        default=12,
        help_text="Rolling window for tier qualification; empty means all-time",
    )
    referrer_points = models.PositiveIntegerField(default=500)
    referee_points = models.PositiveIntegerField(default=250)
    referral_monthly_cap = models.PositiveIntegerField(
        default=5, help_text="Rewarded referrals per referrer per calendar month"
    )
    expiry_reminder_days = models.PositiveSmallIntegerField(default=30)
    subscription_grace_days = models.PositiveSmallIntegerField(
        default=14, help_text="Days a past-due subscription stays live before it expires"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "program settings"
        verbose_name_plural = "program settings"
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="program_settings_singleton"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.pk = self.SINGLETON_ID
        super().save(*args, **kwargs)


class Tier(models.Model):
    """A status level. Upgrades happen as soon as a threshold is crossed; downgrades only at
    the nightly review, one level at a time, after the guaranteed period."""

    name = models.CharField(max_length=50, unique=True)
    rank = models.PositiveSmallIntegerField(unique=True, help_text="Higher is better")
    points_threshold = models.PositiveIntegerField(
        default=0, help_text="Qualifying points needed (points basis)"
    )
    spend_threshold = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        default=Decimal("0"),
        help_text="Spend needed (spend basis)",
    )
    earn_multiplier = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    perks = models.TextField(blank=True)
    guaranteed_months = models.PositiveSmallIntegerField(
        default=12, help_text="Months a member keeps the tier before a downgrade"
    )

    class Meta:
        ordering = ["rank"]

    def __str__(self) -> str:
        return self.name


class PointsAccount(models.Model):
    """A member's cached balance; changed only by the ledger service under a row lock."""

    member = models.OneToOneField(Member, on_delete=models.PROTECT, related_name="points_account")
    balance = models.IntegerField(default=0)
    pending = models.IntegerField(default=0)
    lifetime_earned = models.IntegerField(default=0, help_text="All-time qualifying points")
    tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="accounts"
    )
    tier_since = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="points_balance_non_negative"),
            models.CheckConstraint(condition=Q(pending__gte=0), name="points_pending_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.balance}"


class TransactionKind(models.TextChoices):
    EARN = "earn", "Earned"
    PENDING = "pending", "Earned, pending"
    RELEASE = "release", "Released from pending"
    REDEEM = "redeem", "Redeemed"
    EXPIRE = "expire", "Expired"
    ADJUST = "adjust", "Adjusted"
    REVERSE = "reverse", "Reversed"


class PointsTransaction(models.Model):
    """One line of the append-only ledger.

    `points` is the signed change of the balance and `pending_points` the signed change of
    pending points, so balance == sum(points) and pending == sum(pending_points) always.
    `qualifying_points` is the signed change of points that count towards tiers.
    """

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="points_transactions")
    account = models.ForeignKey(
        PointsAccount, on_delete=models.PROTECT, related_name="transactions"
    )
    kind = models.CharField(max_length=10, choices=TransactionKind.choices)
    points = models.IntegerField()
    pending_points = models.IntegerField(default=0)
    qualifying_points = models.IntegerField(default=0)
    balance_after = models.IntegerField()
    reason = models.CharField(max_length=255)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    source = models.CharField(max_length=50, blank=True)
    source_ref = models.CharField(max_length=100, blank=True)
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals"
    )
    idempotency_key = models.CharField(max_length=200, unique=True)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    breakdown = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["member", "-created_at"]),
            models.Index(fields=["account", "occurred_at"]),
            models.Index(fields=["source", "source_ref"]),
            models.Index(fields=["kind", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.points:+d} ({self.reason})"


class PointsBucket(models.Model):
    """Points earned together, consumed oldest first (FIFO) by spending and expiry."""

    account = models.ForeignKey(PointsAccount, on_delete=models.PROTECT, related_name="buckets")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="points_buckets")
    transaction = models.ForeignKey(
        PointsTransaction, on_delete=models.PROTECT, related_name="buckets"
    )
    points = models.PositiveIntegerField()
    remaining = models.PositiveIntegerField()
    earned_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    available_at = models.DateTimeField()
    pending = models.BooleanField(default=False)
    qualifying = models.BooleanField(default=True)
    reminder_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["expires_at", "earned_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(remaining__lte=models.F("points")), name="bucket_remaining_le_points"
            ),
        ]
        indexes = [
            models.Index(
                fields=["account", "expires_at", "earned_at"],
                condition=Q(remaining__gt=0),
                name="bucket_open_idx",
            ),
            models.Index(
                fields=["expires_at"], condition=Q(remaining__gt=0), name="bucket_expiring_idx"
            ),
            models.Index(
                fields=["available_at"], condition=Q(pending=True), name="bucket_pending_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.remaining}/{self.points} earned {self.earned_at:%Y-%m-%d}"


class EarningRuleKind(models.TextChoices):
    PURCHASE = "purchase", "Points per money unit spent"
    FIXED = "fixed", "Fixed points for an event"
    MULTIPLIER = "multiplier", "Multiplier on the points of an event"


class EarningRule(models.Model):
    """How events earn points. Filters left empty match everything."""

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=12, choices=EarningRuleKind.choices)
    is_active = models.BooleanField(default=True)
    event_type = models.CharField(
        max_length=50,
        blank=True,
        help_text="Fixed rules: the event type (signup, birthday, review, share, referral, "
        "survey_completed or a custom one). Multipliers: optional filter.",
    )
    points_per_unit = models.DecimalField(
        max_digits=8,
        decimal_places=4,
        default=Decimal("1"),
        help_text="Purchase rules: points per unit of money",
    )
    min_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    points = models.PositiveIntegerField(default=0, help_text="Fixed rules: points awarded")
    factor = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        default=Decimal("1"),
        help_text="Multiplier rules: 2 doubles the points",
    )
    channel = models.CharField(max_length=20, blank=True)
    touchpoint = models.CharField(max_length=100, blank=True)
    product_category = models.CharField(max_length=100, blank=True)
    sku = models.CharField(max_length=100, blank=True)
    tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.CASCADE, related_name="earning_rules"
    )
    plan = models.ForeignKey(
        "MembershipPlan",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="earning_rules",
    )
    active_from = models.DateTimeField(null=True, blank=True)
    active_until = models.DateTimeField(null=True, blank=True)
    priority = models.IntegerField(default=0, help_text="Higher wins among non-stackable rules")
    stackable = models.BooleanField(default=True)
    max_count_per_day = models.PositiveIntegerField(null=True, blank=True)
    max_points_per_day = models.PositiveIntegerField(null=True, blank=True)
    max_count_per_week = models.PositiveIntegerField(null=True, blank=True)
    max_points_per_week = models.PositiveIntegerField(null=True, blank=True)
    max_count_per_month = models.PositiveIntegerField(null=True, blank=True)
    max_points_per_month = models.PositiveIntegerField(null=True, blank=True)
    max_count_lifetime = models.PositiveIntegerField(null=True, blank=True)
    max_points_lifetime = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "-priority", "id"]
        indexes = [models.Index(fields=["is_active", "kind"])]

    def __str__(self) -> str:
        return self.name


class RuleAward(models.Model):
    """Points a rule gave a member: what per-member limits count."""

    rule = models.ForeignKey(EarningRule, on_delete=models.CASCADE, related_name="awards")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="rule_awards")
    transaction = models.ForeignKey(
        PointsTransaction, on_delete=models.CASCADE, related_name="rule_awards"
    )
    points = models.PositiveIntegerField()
    awarded_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["rule", "member", "awarded_at"])]

    def __str__(self) -> str:
        return f"{self.rule_id} → {self.member_id}: {self.points}"


class Purchase(models.Model):
    """A purchase seen by the engine: first-purchase detection, spend-based tiers, refunds."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="purchases")
    order_id = models.CharField(max_length=100, blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    channel = models.CharField(max_length=20, blank=True)
    occurred_at = models.DateTimeField()
    points = models.IntegerField(default=0)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "order_id"],
                condition=~Q(order_id=""),
                name="purchase_order_unique_per_member",
            ),
        ]
        indexes = [models.Index(fields=["member", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.order_id or self.pk}: {self.amount} {self.currency}"


class TierChange(models.Model):
    class Cause(models.TextChoices):
        QUALIFIED = "qualified", "Qualified"
        REVIEW = "review", "Periodic review"
        PLAN = "plan", "Paid plan"
        ADMIN = "admin", "Admin"

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="tier_changes")
    from_tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField()
    cause = models.CharField(max_length=20, choices=Cause.choices)

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.from_tier} → {self.to_tier} ({self.cause})"


class RewardKind(models.TextChoices):
    COUPON = "coupon", "Coupon code from a pool"
    MONEY_OFF = "money_off", "Money off"
    FREE_PRODUCT = "free_product", "Free product"
    EXPERIENCE = "experience", "Experience"


class Reward(models.Model):
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=20, choices=RewardKind.choices)
    points_cost = models.PositiveIntegerField()
    value = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, help_text="Money off: the amount"
    )
    stock = models.PositiveIntegerField(null=True, blank=True, help_text="Empty = unlimited")
    per_member_limit = models.PositiveIntegerField(null=True, blank=True)
    min_tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="rewards"
    )
    active_from = models.DateTimeField(null=True, blank=True)
    active_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["points_cost", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(points_cost__gt=0), name="reward_cost_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    def is_available_at(self, when) -> bool:
        return (
            self.is_active
            and (self.active_from is None or self.active_from <= when)
            and (self.active_until is None or when < self.active_until)
        )


class RedemptionStatus(models.TextChoices):
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class Redemption(models.Model):
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="redemptions")
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="redemptions")
    points = models.PositiveIntegerField()
    status = models.CharField(
        max_length=10, choices=RedemptionStatus.choices, default=RedemptionStatus.COMPLETED
    )
    code = models.CharField(max_length=64)
    transaction = models.OneToOneField(
        PointsTransaction, on_delete=models.PROTECT, related_name="redemption"
    )
    refund_transaction = models.OneToOneField(
        PointsTransaction,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="cancelled_redemption",
    )
    idempotency_key = models.CharField(max_length=200, unique=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancel_reason = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["member", "reward", "status"]),
            models.Index(fields=["created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.reward} for {self.member_id} ({self.status})"


class RewardCode(models.Model):
    """A one-use code in a coupon reward's pool."""

    reward = models.ForeignKey(Reward, on_delete=models.CASCADE, related_name="codes")
    code = models.CharField(max_length=64)
    redemption = models.OneToOneField(
        Redemption, null=True, blank=True, on_delete=models.PROTECT, related_name="reward_code"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["reward", "code"], name="reward_code_unique"),
        ]
        indexes = [
            models.Index(fields=["reward"], condition=Q(redemption=None), name="reward_code_free"),
        ]

    def __str__(self) -> str:
        return self.code


class ReferralStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUALIFIED = "qualified", "Qualified"
    REJECTED = "rejected", "Rejected"


class Referral(models.Model):
    referrer = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="referrals_made")
    referee = models.OneToOneField(Member, on_delete=models.CASCADE, related_name="referral")
    status = models.CharField(
        max_length=10, choices=ReferralStatus.choices, default=ReferralStatus.PENDING
    )
    reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    qualified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["referrer", "status", "qualified_at"])]

    def __str__(self) -> str:
        return f"{self.referrer_id} → {self.referee_id} ({self.status})"


class MembershipPlan(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    billing_period_months = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)]
    )
    trial_days = models.PositiveSmallIntegerField(default=0)
    earn_multiplier = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("1.00"))
    renewal_bonus_points = models.PositiveIntegerField(default=0)
    granted_tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="plans"
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["price", "name"]

    def __str__(self) -> str:
        return self.name


class SubscriptionStatus(models.TextChoices):
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"


LIVE_SUBSCRIPTION_STATUSES = (
    SubscriptionStatus.TRIALING,
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.PAST_DUE,
)
# Statuses whose benefits (multiplier, granted tier) apply.
BENEFIT_SUBSCRIPTION_STATUSES = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE)


class Subscription(models.Model):
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey(MembershipPlan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=10, choices=SubscriptionStatus.choices)
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    cancel_at_period_end = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["member"],
                condition=Q(status__in=["trialing", "active", "past_due"]),
                name="one_live_subscription_per_member",
            ),
        ]
        indexes = [models.Index(fields=["status", "current_period_end"])]

    def __str__(self) -> str:
        return f"{self.plan} for {self.member_id} ({self.status})"

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_SUBSCRIPTION_STATUSES


class SubscriptionEvent(models.Model):
    """Every status change of a subscription, with its time (retention analysis reads it)."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="events")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="subscription_events")
    from_status = models.CharField(max_length=10, blank=True)
    to_status = models.CharField(max_length=10)
    occurred_at = models.DateTimeField()
    note = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [models.Index(fields=["to_status", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status} at {self.occurred_at:%Y-%m-%d}"


class SubscriptionPayment(models.Model):
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="payments"
    )
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    paid_at = models.DateTimeField()
    payment_ref = models.CharField(max_length=100, unique=True)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    bonus_transaction = models.ForeignKey(
        PointsTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-paid_at", "-id"]

    def __str__(self) -> str:
        return f"{self.payment_ref}: {self.amount} {self.currency}"
