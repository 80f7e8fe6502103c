"""Campaigns: a message and an optional offer to a segment (once, or always-on on a trigger),
with a random holdout group, and what was sent to whom.

Written only by campaigns.services; configured in the admin. Points are integers, money
Decimal, times UTC.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from analytics.models import Segment
from journeys.models import JourneyStage
from members.models import Member
from rewards.models import PointsTransaction, Reward


class CampaignSettings(models.Model):
    """Guard rails shared by every campaign (one row)."""

    SINGLETON_ID = 1

    weekly_message_cap = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1)],
        help_text="At most this many campaign messages per member in any 7 days, all campaigns",
    )
    batch_size = models.PositiveIntegerField(
        default=200,
        validators=[MinValueValidator(1), MaxValueValidator(5000)],
        help_text="Messages per Celery task",
    )
    messages_per_minute = models.PositiveIntegerField(
        default=600,
        validators=[MinValueValidator(1)],
        help_text="Sending rate limit: batches are spaced so no more than this go out a minute",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "campaign settings"
        verbose_name_plural = "campaign settings"

    def __str__(self) -> str:
        return "Campaign settings"


class OfferKind(models.TextChoices):
    NONE = "none", "Message only"
    MULTIPLIER = "multiplier", "Points multiplier during the campaign"
    BONUS = "bonus", "Bonus points when the message is sent"
    REWARD = "reward", "A reward made available"


class Schedule(models.TextChoices):
    ONCE = "once", "Once, at a time"
    STAGE_ENTRY = "stage_entry", "Always on: when a member enters a journey stage"
    SEGMENT_ENTRY = "segment_entry", "Always on: when a member enters the segment"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class Channel(models.TextChoices):
    EMAIL = "email", "Email"


class Campaign(models.Model):
    """A targeted message with an optional offer.

    Members are split at random, stably per campaign (a hash of campaign and member id), into a
    holdout control group of `control_share` that gets nothing and a treatment group that gets
    the message and the offer. The offer holds from `starts_at` to `ends_at` and stops when its
    points budget is used up.
    """

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    status = models.CharField(
        max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT, db_index=True
    )
    segment = models.ForeignKey(
        Segment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaigns",
        help_text="Who may receive it. Required except for stage triggers, where it narrows.",
    )
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    schedule = models.CharField(max_length=15, choices=Schedule.choices, default=Schedule.ONCE)
    send_at = models.DateTimeField(
        null=True, blank=True, help_text="Once: when to send (empty: at launch)"
    )
    trigger_stage = models.ForeignKey(
        JourneyStage, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    starts_at = models.DateTimeField(help_text="The offer holds from here…")
    ends_at = models.DateTimeField(help_text="…until here; no sends after it")
    control_share = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.100"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("0.9"))],
        help_text="Share of the audience held out as a control group (0 to 0.9)",
    )
    offer_kind = models.CharField(max_length=12, choices=OfferKind.choices, default=OfferKind.NONE)
    offer_title = models.CharField(
        max_length=120, blank=True, help_text="Shown in the portal's offers, e.g. Double points"
    )
    offer_description = models.TextField(blank=True)
    multiplier = models.DecimalField(
        max_digits=4,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("1.01")), MaxValueValidator(Decimal("10"))],
        help_text="Multiplier offers: e.g. 2 for double points",
    )
    multiplier_event_type = models.CharField(
        max_length=50, default="purchase", blank=True, help_text="Empty: every earning event"
    )
    bonus_points = models.PositiveIntegerField(null=True, blank=True)
    reward = models.ForeignKey(
        Reward, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    points_budget = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: no budget. The offer stops once it is spent."
    )
    points_awarded = models.PositiveIntegerField(default=0, editable=False)
    subject_template = models.CharField(max_length=200)
    body_template = models.TextField()
    conversion_days = models.PositiveSmallIntegerField(
        default=14,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="A purchase within this many days of the send counts as a conversion",
    )
    trigger_cursor = models.DateTimeField(null=True, blank=True, editable=False)
    launched_at = models.DateTimeField(null=True, blank=True, editable=False)
    launched_by = models.ForeignKey(
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
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="campaign_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(points_budget__isnull=True)
                | Q(points_awarded__lte=models.F("points_budget")),
                name="campaign_within_budget",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_points_offer(self) -> bool:
        return self.offer_kind in (OfferKind.MULTIPLIER, OfferKind.BONUS)

    @property
    def budget_left(self) -> int | None:
        if self.points_budget is None:
            return None
        return max(0, self.points_budget - self.points_awarded)

    @property
    def offer_label(self) -> str:
        """The name of the award line a multiplier offer adds (unique: names are)."""
        return f"Offer: {self.name}"[:100]

    def is_open_at(self, when) -> bool:
        return self.starts_at <= when < self.ends_at


class Group(models.TextChoices):
    TREATMENT = "treatment", "Treatment"
    CONTROL = "control", "Control (holdout)"


class SendStatus(models.TextChoices):
    PENDING = "pending", "Queued"
    SENT = "sent", "Sent"
    HELD_OUT = "held_out", "Held out (control)"
    NO_CONSENT = "no_consent", "Excluded: no marketing consent"
    CAPPED = "capped", "Excluded: weekly message cap"
    NO_ADDRESS = "no_address", "Excluded: no email or inactive"
    BUDGET = "budget", "Skipped: offer budget spent"


EXCLUDED = (SendStatus.NO_CONSENT, SendStatus.CAPPED, SendStatus.NO_ADDRESS, SendStatus.BUDGET)


class CampaignSend(models.Model):
    """One member in one campaign (at most once): their group and what happened. Control
    members get a row too (held out), so results compare like with like from `assigned_at`."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="sends")
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="campaign_sends", db_index=False
    )
    group = models.CharField(max_length=10, choices=Group.choices)
    status = models.CharField(max_length=12, choices=SendStatus.choices)
    trigger = models.CharField(max_length=15, choices=Schedule.choices)
    assigned_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    subject = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-assigned_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "member"], name="campaign_member_once"),
        ]
        indexes = [
            # The weekly cap and a member's offers.
            models.Index(fields=["member", "sent_at"], name="campaign_send_member_idx"),
            models.Index(fields=["campaign", "status"], name="campaign_send_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} → {self.member_id} ({self.group}, {self.status})"


class OfferAward(models.Model):
    """Points a campaign's offer gave: a bonus, or a multiplier's extra on an award."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="offer_awards")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    transaction = models.ForeignKey(PointsTransaction, on_delete=models.PROTECT, related_name="+")
    points = models.PositiveIntegerField()
    awarded_at = models.DateTimeField()

    class Meta:
        ordering = ["-awarded_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "transaction"], name="offer_award_once_per_transaction"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.points} to {self.member_id} by campaign {self.campaign_id}"
