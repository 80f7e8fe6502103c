"""Analytics: what the nightly pipeline stores, and what marketers and analysts define on top.

Snapshots (written only by analytics.pipeline, read by the dashboards and the API):
PipelineRun, ModelFit, MemberMetrics, KpiSnapshot, CohortRetention. Definitions (written in the
admin): Segment (with its refreshed SegmentMembership) and Goal.

Statistical outputs (probabilities, expected counts, model parameters) are floats; money is
Decimal, points are integers.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from journeys.models import JourneyStage
from members.models import Member
from rewards.models import Tier


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class PipelineRun(models.Model):
    """One run of the nightly pipeline for an as-of date. A failed or killed run is simply run
    again: each run rewrites that date's snapshots."""

    as_of = models.DateField(db_index=True)
    trigger = models.CharField(max_length=20, default="beat")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    chunks = models.PositiveIntegerField(default=0)
    rows = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)
    details = models.JSONField(
        default=dict,
        blank=True,
        help_text="Scoring cut-offs and the time each phase took",
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        get_latest_by = "started_at"

    def __str__(self) -> str:
        return f"Run as of {self.as_of} ({self.status})"

    @property
    def duration(self):
        if self.finished_at is None:
            return None
        return self.finished_at - self.started_at


class AnalyticsSettings(models.Model):
    """How the nightly pipeline scores members: one row (pk=1), read through
    analytics.selectors.analytics_settings()."""

    SINGLETON_ID = 1

    clv_discount_rate = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.1000"),
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Annual discount rate for the 12-month CLV, e.g. 0.10 for 10%",
    )
    churn_high_below = models.FloatField(
        default=0.3,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Probability alive below which a customer is at high churn risk",
    )
    churn_medium_below = models.FloatField(
        default=0.7,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Probability alive below which a customer is at medium churn risk",
    )
    lapsed_after_days = models.PositiveIntegerField(
        default=180,
        validators=[MinValueValidator(1)],
        help_text="Days without a purchase after which a customer counts as lapsed",
    )
    members_per_chunk = models.PositiveIntegerField(
        default=50_000,
        validators=[MinValueValidator(100)],
        help_text="Member ids per pipeline task; smaller chunks spread over more workers",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "analytics settings"
        verbose_name_plural = "analytics settings"
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="analytics_settings_singleton"),
            models.CheckConstraint(
                condition=Q(churn_high_below__lte=models.F("churn_medium_below")),
                name="analytics_churn_thresholds_ordered",
            ),
        ]

    def __str__(self) -> str:
        return "Analytics settings"

    def save(self, *args, **kwargs):
        self.pk = self.SINGLETON_ID
        super().save(*args, **kwargs)


class FitModel(models.TextChoices):
    BG_NBD = "bgnbd", "BG/NBD (purchase frequency)"
    GAMMA_GAMMA = "gamma_gamma", "Gamma-Gamma (spend)"
    SBG = "sbg", "Shifted-beta-geometric (paid-plan retention)"


class ModelFit(models.Model):
    """A model fitted by maximum likelihood at a run: parameters by name, log-likelihood, the
    number of customers (or subscribers) and the time unit the parameters are expressed in."""

    run = models.ForeignKey(
        PipelineRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="fits"
    )
    as_of = models.DateField()
    model = models.CharField(max_length=12, choices=FitModel.choices)
    scope = models.CharField(
        max_length=100, blank=True, help_text="What was fitted, e.g. a plan's monthly cohort"
    )
    params = models.JSONField(default=dict)
    log_likelihood = models.FloatField(null=True, blank=True)
    n_customers = models.PositiveIntegerField(default=0)
    time_unit = models.CharField(max_length=10, default="week")
    converged = models.BooleanField(default=False)
    message = models.CharField(max_length=255, blank=True)
    fitted_at = models.DateTimeField()

    class Meta:
        ordering = ["-as_of", "model", "scope"]
        constraints = [
            models.UniqueConstraint(
                fields=["as_of", "model", "scope"], name="model_fit_unique_per_date"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_model_display()} as of {self.as_of}"


class ChurnRisk(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    LAPSED = "lapsed", "Lapsed"
    NO_PURCHASE = "no_purchase", "No purchase yet"


class RfmSegment(models.TextChoices):
    CHAMPIONS = "champions", "Champions"
    LOYAL = "loyal", "Loyal"
    POTENTIAL_LOYALIST = "potential_loyalist", "Potential loyalist"
    NEW = "new", "New"
    AT_RISK = "at_risk", "At risk"
    CANT_LOSE = "cant_lose", "Can't lose"
    HIBERNATING = "hibernating", "Hibernating"
    LOST = "lost", "Lost"
    NO_PURCHASE = "no_purchase", "No purchase yet"


class ClvBand(models.TextChoices):
    TOP = "top", "Top 10%"
    HIGH = "high", "High (next 20%)"
    MEDIUM = "medium", "Medium (next 30%)"
    LOW = "low", "Low (last 40%)"
    NONE = "none", "No purchase yet"


class MemberMetrics(models.Model):
    """A member's figures from the latest run, in the buy-till-you-die form: purchases on one
    day merged; frequency = repeat purchase days; recency and tenure (T) in days from the first
    purchase; monetary = mean value of the repeat purchase days."""

    member = models.OneToOneField(
        Member, on_delete=models.CASCADE, primary_key=True, related_name="metrics"
    )
    as_of = models.DateField()
    first_purchase_on = models.DateField(null=True, blank=True)
    last_purchase_on = models.DateField(null=True, blank=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    purchase_days = models.PositiveIntegerField(default=0)
    frequency = models.PositiveIntegerField(default=0)
    recency_days = models.PositiveIntegerField(default=0)
    tenure_days = models.PositiveIntegerField(default=0)
    monetary = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    total_spend = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    p_alive = models.FloatField(null=True, blank=True)
    expected_purchases_90d = models.FloatField(null=True, blank=True)
    expected_purchases_12m = models.FloatField(null=True, blank=True)
    expected_order_value = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True
    )
    clv_12m = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    clv_band = models.CharField(max_length=10, choices=ClvBand.choices, default=ClvBand.NONE)
    churn_risk = models.CharField(
        max_length=12, choices=ChurnRisk.choices, default=ChurnRisk.NO_PURCHASE
    )
    recency_score = models.PositiveSmallIntegerField(default=0)
    frequency_score = models.PositiveSmallIntegerField(default=0)
    monetary_score = models.PositiveSmallIntegerField(default=0)
    rfm_segment = models.CharField(
        max_length=20, choices=RfmSegment.choices, default=RfmSegment.NO_PURCHASE
    )

    class Meta:
        verbose_name_plural = "member metrics"
        indexes = [
            models.Index(fields=["rfm_segment"], name="metrics_rfm_idx"),
            models.Index(fields=["churn_risk", "clv_12m"], name="metrics_churn_clv_idx"),
            models.Index(fields=["clv_12m"], name="metrics_clv_idx"),
        ]

    def __str__(self) -> str:
        return f"Metrics of {self.member_id} as of {self.as_of}"


class Kpi(models.TextChoices):
    MEMBERS = "members", "Members"
    ACTIVE_30D = "active_30d", "Active members (30 days)"
    ACTIVE_90D = "active_90d", "Active members (90 days)"
    RETENTION_RATE = "retention_rate", "Retention rate"
    CHURN_RATE = "churn_rate", "Churn rate"
    REPEAT_PURCHASE_RATE = "repeat_purchase_rate", "Repeat purchase rate"
    PURCHASE_FREQUENCY = "purchase_frequency", "Purchase frequency"
    AVERAGE_ORDER_VALUE = "average_order_value", "Average order value"
    REDEMPTION_RATE = "redemption_rate", "Redemption rate"
    POINTS_LIABILITY = "points_liability", "Points liability"
    ENROLLMENTS = "enrollments", "Enrollments"
    ENGAGEMENT = "engagement", "Engagement (events per active member)"
    NPS = "nps", "Net Promoter Score"
    CSAT = "csat", "Customer satisfaction (CSAT)"
    SUBSCRIBERS = "subscribers", "Paid-plan subscribers"
    SUBSCRIBER_RETENTION = "subscriber_retention", "Paid-plan retention"
    MRR = "mrr", "Monthly recurring revenue"


# KPIs where a fall is good news (the dashboards colour changes and goals accordingly).
LOWER_IS_BETTER = frozenset({Kpi.CHURN_RATE, Kpi.POINTS_LIABILITY})


class KpiSnapshot(models.Model):
    """A program KPI on a day (as of its end in the program's timezone). Null when undefined
    (e.g. NPS with no answers)."""

    run = models.ForeignKey(
        PipelineRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="kpis"
    )
    as_of = models.DateField()
    kpi = models.CharField(max_length=30, choices=Kpi.choices)
    value = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)

    class Meta:
        ordering = ["-as_of", "kpi"]
        constraints = [
            models.UniqueConstraint(fields=["as_of", "kpi"], name="kpi_snapshot_unique_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.kpi} on {self.as_of}: {self.value}"


class CohortBasis(models.TextChoices):
    ENROLLMENT = "enrollment", "Enrollment month"
    FIRST_PURCHASE = "first_purchase", "First-purchase month"
    SUBSCRIPTION = "subscription", "Paid-plan start month"


class CohortRetention(models.Model):
    """One cell of a cohort table: of the `size` members of a monthly cohort, how many were
    retained (active, or still subscribed) `period` months later. `projected` is the model's
    share for that cell where there is one (sBG for paid-plan cohorts)."""

    run = models.ForeignKey(
        PipelineRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="cohorts"
    )
    as_of = models.DateField()
    basis = models.CharField(max_length=15, choices=CohortBasis.choices)
    cohort = models.DateField(help_text="First day of the cohort's month")
    period = models.PositiveSmallIntegerField(help_text="Months since the cohort's month")
    size = models.PositiveIntegerField()
    retained = models.PositiveIntegerField()
    projected = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["basis", "cohort", "period"]
        constraints = [
            models.UniqueConstraint(
                fields=["as_of", "basis", "cohort", "period"], name="cohort_cell_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.basis} {self.cohort:%Y-%m} +{self.period}: {self.retained}/{self.size}"

    @property
    def rate(self) -> float | None:
        return self.retained / self.size if self.size else None


class ConsentFilter(models.TextChoices):
    ANY = "any", "Any"
    GIVEN = "given", "Marketing consent given"
    NOT_GIVEN = "not_given", "No marketing consent"


class Segment(models.Model):
    """A rule-based group of members. Every rule that is set must hold (AND); list rules match
    any of their values (OR). Refreshed nightly into SegmentMembership; counted live in the
    admin while edited."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    tiers = models.ManyToManyField(Tier, blank=True, related_name="+")
    stages = models.ManyToManyField(JourneyStage, blank=True, related_name="+")
    rfm_segments = models.JSONField(default=list, blank=True)
    clv_bands = models.JSONField(default=list, blank=True)
    min_clv = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    max_clv = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    min_p_alive = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(1)]
    )
    max_p_alive = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(1)]
    )
    active_within_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Last activity within this many days"
    )
    inactive_for_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="No activity for at least this many days"
    )
    enrollment_channels = models.JSONField(default=list, blank=True)
    countries = models.JSONField(default=list, blank=True, help_text="ISO 3166-1 alpha-2 codes")
    min_age = models.PositiveSmallIntegerField(null=True, blank=True)
    max_age = models.PositiveSmallIntegerField(null=True, blank=True)
    marketing_consent = models.CharField(
        max_length=10, choices=ConsentFilter.choices, default=ConsentFilter.ANY
    )
    member_count = models.PositiveIntegerField(default=0, editable=False)
    refreshed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(models.Model):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="segment_memberships")
    added_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "member"], name="segment_member_unique"),
        ]
        indexes = [models.Index(fields=["member"], name="segment_membership_member_idx")]

    def __str__(self) -> str:
        return f"{self.member_id} in {self.segment_id}"


class Goal(models.Model):
    """A SMART goal on a KPI: from a baseline on a date to a target by a deadline."""

    name = models.CharField(max_length=150)
    kpi = models.CharField(max_length=30, choices=Kpi.choices)
    baseline = models.DecimalField(max_digits=20, decimal_places=6)
    baseline_on = models.DateField()
    target = models.DecimalField(max_digits=20, decimal_places=6)
    deadline = models.DateField()
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="analytics_goals"
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["deadline", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(deadline__gt=models.F("baseline_on")),
                name="goal_deadline_after_baseline",
            ),
            models.CheckConstraint(
                condition=~Q(target=models.F("baseline")), name="goal_target_differs"
            ),
        ]

    def __str__(self) -> str:
        return self.name
