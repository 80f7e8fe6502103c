"""Feedback: surveys the program sends after the moments that matter, the invitations and
answers, and the follow-ups Support makes with unhappy customers.

Responses and invitations carry the moment's dimensions (stage, touchpoint, channel, tier) as
they were when the member was asked, so results are grouped without re-deriving history, and
each answer carries the metric it counts towards (NPS, CSAT, CES), so scores are one aggregate.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from journeys.models import CustomerEvent, JourneyStage, Touchpoint, validate_event_type_name
from members.models import Member
from rewards.models import Tier


class SurveyKind(models.TextChoices):
    NPS = "nps", "Net Promoter Score (NPS)"
    CSAT = "csat", "Customer satisfaction (CSAT)"
    CES = "ces", "Customer effort score (CES)"
    CUSTOM = "custom", "Custom"


class QuestionKind(models.TextChoices):
    NPS = "nps", "NPS scale 0–10"
    RATING = "rating", "Rating 1–5"
    SINGLE_CHOICE = "single_choice", "Single choice"
    MULTIPLE_CHOICE = "multiple_choice", "Multiple choice"
    TEXT = "text", "Free text"


class Metric(models.TextChoices):
    NPS = "nps", "NPS"
    CSAT = "csat", "CSAT"
    CES = "ces", "CES"


CHOICE_KINDS = (QuestionKind.SINGLE_CHOICE, QuestionKind.MULTIPLE_CHOICE)
SCALES = {QuestionKind.NPS: (0, 10), QuestionKind.RATING: (1, 5)}


class Survey(models.Model):
    """A questionnaire, and when the program sends it.

    The trigger is an event type, optionally at one touchpoint or while the member is in one
    stage; the invitation goes out `delay_hours` after the event. A member who was asked
    anything (any survey) within `cooldown_days` is not asked again."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=SurveyKind.choices)
    title = models.CharField(max_length=200, help_text="The heading members see")
    intro = models.TextField(blank=True, help_text="A sentence or two above the questions")
    active = models.BooleanField(default=True)
    starts_at = models.DateTimeField(null=True, blank=True, help_text="Empty: from now on")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: no end")
    trigger_event_type = models.CharField(
        max_length=50,
        blank=True,
        validators=[validate_event_type_name],
        help_text="Invite members after an event of this type (e.g. purchase); "
        "empty: no invitations are sent",
    )
    trigger_touchpoint = models.ForeignKey(
        Touchpoint,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Only events at this touchpoint",
    )
    trigger_stage = models.ForeignKey(
        JourneyStage,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Only when the member was in this journey stage at the time of the event",
    )
    delay_hours = models.PositiveIntegerField(
        default=0, help_text="Hours after the event before the invitation is sent"
    )
    cooldown_days = models.PositiveIntegerField(
        default=30,
        help_text="Do not invite a member who was sent any survey within this many days",
    )
    invitation_valid_days = models.PositiveIntegerField(
        default=14, validators=[MinValueValidator(1)], help_text="Days an invitation link works"
    )
    points = models.PositiveIntegerField(default=0, help_text="Points for completing it")
    open_to_all = models.BooleanField(
        default=False,
        help_text="Members may answer once without an invitation (portal list, kiosks via API)",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(starts_at__isnull=True)
                | Q(ends_at__isnull=True)
                | Q(ends_at__gt=models.F("starts_at")),
                name="survey_window_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        errors = {}
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = "The end must be after the start."
        if (self.trigger_touchpoint_id or self.trigger_stage_id) and not self.trigger_event_type:
            errors["trigger_event_type"] = "A touchpoint or stage narrows an event type: give one."
        if errors:
            raise ValidationError(errors)

    def is_live(self, at) -> bool:
        return (
            self.active
            and (self.starts_at is None or self.starts_at <= at)
            and (self.ends_at is None or at < self.ends_at)
        )

    def metric_for(self, question_kind: str) -> str:
        """Which score an answer counts towards: NPS questions always count as NPS; rating
        questions count as CSAT in a CSAT survey and as CES in a CES survey."""
        if question_kind == QuestionKind.NPS:
            return Metric.NPS
        if question_kind == QuestionKind.RATING and self.kind == SurveyKind.CSAT:
            return Metric.CSAT
        if question_kind == QuestionKind.RATING and self.kind == SurveyKind.CES:
            return Metric.CES
        return ""


class Question(models.Model):
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="questions")
    order = models.PositiveSmallIntegerField(default=0)
    text = models.CharField(max_length=300)
    kind = models.CharField(max_length=20, choices=QuestionKind.choices)
    required = models.BooleanField(default=True)
    options = models.TextField(blank=True, help_text="Choice questions: one option per line")
    low_label = models.CharField(
        max_length=50, blank=True, help_text="Scales: what the lowest value means"
    )
    high_label = models.CharField(
        max_length=50, blank=True, help_text="Scales: what the highest value means"
    )

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.text

    @property
    def option_list(self) -> list[str]:
        return [line.strip() for line in self.options.splitlines() if line.strip()]

    @property
    def scale(self) -> tuple[int, int] | None:
        return SCALES.get(self.kind)

    def clean(self):
        if self.kind in CHOICE_KINDS and len(self.option_list) < 2:
            raise ValidationError({"options": "Give at least two options, one per line."})
        if self.kind not in CHOICE_KINDS and self.option_list:
            raise ValidationError({"options": "Only choice questions have options."})


class InvitationStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    SENT = "sent", "Sent"
    ANSWERED = "answered", "Answered"
    SKIPPED = "skipped", "Not sent"


class Invitation(models.Model):
    """One member asked to answer one survey about one moment (the trigger event).

    Created when the invitation task first sees a matching event (scheduled for event time +
    delay), sent when that time has come unless the cool-down or the member's state says no.
    The token is the link's secret: it identifies the member without a login."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="invitations")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="invitations")
    trigger_event = models.ForeignKey(
        CustomerEvent,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # unique constraint below
    )
    event_type = models.CharField(max_length=50, blank=True)
    event_at = models.DateTimeField(null=True, blank=True)
    stage = models.ForeignKey(
        JourneyStage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    touchpoint = models.ForeignKey(
        Touchpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.CharField(max_length=12, blank=True)
    tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    token = models.CharField(max_length=64, unique=True, editable=False)
    status = models.CharField(
        max_length=10, choices=InvitationStatus.choices, default=InvitationStatus.SCHEDULED
    )
    send_after = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "trigger_event"],
                condition=Q(trigger_event__isnull=False),
                name="invitation_one_per_member_and_event",
            ),
        ]
        indexes = [
            models.Index(
                fields=["send_after"],
                condition=Q(status="scheduled"),
                name="invitation_due_idx",
            ),
            models.Index(fields=["member", "sent_at"], name="invitation_member_sent_idx"),
            models.Index(fields=["sent_at"], name="invitation_sent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.survey} → {self.member_id} ({self.status})"

    def is_expired(self, at) -> bool:
        return self.expires_at is not None and at >= self.expires_at

    def state(self, at) -> str:
        """scheduled, sent (open), answered, skipped or expired."""
        if self.status == InvitationStatus.SENT and self.is_expired(at):
            return "expired"
        return self.status


class AnsweredVia(models.TextChoices):
    PORTAL = "portal", "Portal"
    LINK = "link", "Invitation link"
    API = "api", "API"
    IMPORT = "import", "Import"


class SurveyResponse(models.Model):
    """A completed survey. At most one per invitation, and one per member and survey without
    an invitation (the partial unique constraints hold that under races)."""

    survey = models.ForeignKey(Survey, on_delete=models.PROTECT, related_name="responses")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="survey_responses")
    invitation = models.OneToOneField(
        Invitation, null=True, blank=True, on_delete=models.SET_NULL, related_name="response"
    )
    submitted_at = models.DateTimeField(db_index=True)
    answered_via = models.CharField(max_length=10, choices=AnsweredVia.choices)
    stage = models.ForeignKey(
        JourneyStage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    touchpoint = models.ForeignKey(
        Touchpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.CharField(max_length=12, blank=True)
    tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    points_awarded = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["survey", "member"],
                condition=Q(invitation__isnull=True),
                name="response_once_per_member_without_invitation",
            ),
        ]
        indexes = [models.Index(fields=["survey", "submitted_at"], name="response_survey_idx")]

    def __str__(self) -> str:
        return f"{self.survey} by {self.member_id} at {self.submitted_at:%Y-%m-%d %H:%M}"


class Answer(models.Model):
    response = models.ForeignKey(SurveyResponse, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="answers")
    metric = models.CharField(max_length=4, choices=Metric.choices, blank=True)
    score = models.SmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(10)]
    )
    choices = models.JSONField(default=list, blank=True)
    text = models.TextField(blank=True)

    class Meta:
        ordering = ["question__order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["response", "question"], name="answer_once"),
        ]
        indexes = [
            models.Index(
                fields=["metric", "response"],
                condition=~Q(metric=""),
                name="answer_metric_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.display()

    def display(self) -> str:
        if self.score is not None:
            return str(self.score)
        if self.choices:
            return ", ".join(self.choices)
        return self.text


class FollowUpStatus(models.TextChoices):
    OPEN = "open", "Open"
    CONTACTED = "contacted", "Contacted"
    RESOLVED = "resolved", "Resolved"


class FollowUp(models.Model):
    """Support's task after an unhappy answer (NPS 0–6, CSAT 1–2): contact the member and
    record the outcome."""

    response = models.OneToOneField(
        SurveyResponse, on_delete=models.CASCADE, related_name="follow_up"
    )
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="follow_ups")
    reason = models.CharField(max_length=200)
    status = models.CharField(
        max_length=10, choices=FollowUpStatus.choices, default=FollowUpStatus.OPEN
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="feedback_follow_ups",
        limit_choices_to={"is_staff": True},
    )
    notes = models.TextField(blank=True)
    due_at = models.DateTimeField()
    outcome = models.TextField(blank=True, help_text="What was done; required to resolve")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "follow-up"
        ordering = ["due_at", "id"]
        indexes = [models.Index(fields=["status", "due_at"], name="followup_status_due_idx")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="resolved") | Q(resolved_at__isnull=False),
                name="followup_resolved_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"Follow-up: {self.reason}"

    def is_overdue(self, at) -> bool:
        return self.status != FollowUpStatus.RESOLVED and self.due_at < at


class InvitationCursor(models.Model):
    """The invitation task's high-water mark: the last CustomerEvent id it has looked at."""

    SINGLETON_ID = 1

    last_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="invitation_cursor_singleton"),
        ]

    def __str__(self) -> str:
        return f"Events up to {self.last_event_id}"
