"""Admin forms: they check what a marketer or support agent typed; services do the writing."""

import csv
import io
import json
import re
import uuid
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q

from members.models import Member

from .models import (
    EarningRule,
    MembershipPlan,
    ProgramSettings,
    Reward,
    RewardCode,
    RewardKind,
    Tier,
    TierBasis,
)
from .selectors import program_settings
from .services import EventInput
from .validation import (
    KIND_FIELDS,
    NEUTRAL,
    earning_rule_errors,
    threshold_problems,
    window_error,
)

# -- shared checks ---------------------------------------------------------------------------


class MemberField(forms.CharField):
    """A member typed as member number or email; cleans to the Member."""

    def __init__(self, **kwargs):
        kwargs.setdefault("label", "Member (number or email)")
        kwargs.setdefault("max_length", 254)
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        member = (
            Member.objects.filter(Q(member_number__iexact=value) | Q(email__iexact=value))
            .order_by("pk")
            .first()
        )
        if member is None:
            raise ValidationError("No member has this number or email.", code="unknown_member")
        return member


# -- configuration ---------------------------------------------------------------------------


class ProgramSettingsForm(forms.ModelForm):
    class Meta:
        model = ProgramSettings
        fields = (
            "name",
            "points_name",
            "timezone",
            "currency",
            "rounding",
            "cost_per_point",
            "pending_days",
            "expiry_policy",
            "expiry_months",
            "expiry_reminder_days",
            "tier_basis",
            "tier_window_months",
            "referrer_points",
            "referee_points",
            "referral_monthly_cap",
            "subscription_grace_days",
        )

    def clean(self):
        cleaned = super().clean()
        basis = cleaned.get("tier_basis")
        if basis and "tier_basis" in self.changed_data:
            for problem in threshold_problems(list(Tier.objects.all()), basis):
                self.add_error("tier_basis", problem)
        return cleaned


class EarningRuleForm(forms.ModelForm):
    class Meta:
        model = EarningRule
        fields = (
            "name",
            "kind",
            "is_active",
            "event_type",
            "points_per_unit",
            "min_amount",
            "points",
            "factor",
            "channel",
            "touchpoint",
            "product_category",
            "sku",
            "tier",
            "plan",
            "active_from",
            "active_until",
            "priority",
            "stackable",
            "max_count_per_day",
            "max_points_per_day",
            "max_count_per_week",
            "max_points_per_week",
            "max_count_per_month",
            "max_points_per_month",
            "max_count_lifetime",
            "max_points_lifetime",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("points_per_unit", "points", "factor"):
            self.fields[name].required = False
        # Show the amount fields of other kinds empty, not with their stored neutral value.
        kind = self.instance.kind if self.instance.pk else None
        for name in NEUTRAL:
            if kind is None or name not in KIND_FIELDS[kind]:
                self.initial[name] = None

    def clean(self):
        cleaned = super().clean()
        problem = window_error(cleaned.get("active_from"), cleaned.get("active_until"))
        if problem:
            self.add_error("active_until", problem)
        for name, message in earning_rule_errors(cleaned.get("kind"), cleaned).items():
            self.add_error(name, message)
        for name, neutral in NEUTRAL.items():
            if cleaned.get(name) is None and name not in self.errors:
                cleaned[name] = neutral
        return cleaned


class TierForm(forms.ModelForm):
    class Meta:
        model = Tier
        fields = (
            "name",
            "rank",
            "points_threshold",
            "spend_threshold",
            "earn_multiplier",
            "guaranteed_months",
            "perks",
        )

    def clean_earn_multiplier(self):
        value = self.cleaned_data["earn_multiplier"]
        if value is not None and value < 1:
            raise ValidationError("The earn multiplier must be at least 1.")
        return value

    def clean(self):
        cleaned = super().clean()
        needed = ("name", "rank", "points_threshold", "spend_threshold")
        if any(cleaned.get(f) is None for f in needed):
            return cleaned
        candidate = Tier(
            name=cleaned["name"],
            rank=cleaned["rank"],
            points_threshold=cleaned["points_threshold"],
            spend_threshold=cleaned["spend_threshold"],
        )
        others = list(Tier.objects.exclude(pk=self.instance.pk))
        if any(t.rank == candidate.rank for t in others):
            return cleaned  # the unique check on rank reports this one
        basis = program_settings().tier_basis
        field = "spend_threshold" if basis == TierBasis.SPEND else "points_threshold"
        for problem in threshold_problems([*others, candidate], basis, involving=candidate):
            self.add_error(field, problem)
        return cleaned


class RewardForm(forms.ModelForm):
    class Meta:
        model = Reward
        fields = (
            "name",
            "description",
            "kind",
            "points_cost",
            "value",
            "is_active",
            "active_from",
            "active_until",
            "min_tier",
            "stock",
            "per_member_limit",
        )

    def clean_points_cost(self):
        value = self.cleaned_data["points_cost"]
        if value is not None and value <= 0:
            raise ValidationError("The points cost must be above 0.")
        return value

    def clean_stock(self):
        value = self.cleaned_data["stock"]
        if value is not None and value < 0:
            raise ValidationError("Stock cannot be negative.")
        return value

    def clean(self):
        cleaned = super().clean()
        problem = window_error(cleaned.get("active_from"), cleaned.get("active_until"))
        if problem:
            self.add_error("active_until", problem)
        if cleaned.get("kind") == RewardKind.MONEY_OFF:
            value = cleaned.get("value")
            if value is None or value <= 0:
                self.add_error("value", "Money-off rewards need an amount above 0.")
        return cleaned


class MembershipPlanForm(forms.ModelForm):
    class Meta:
        model = MembershipPlan
        fields = (
            "name",
            "description",
            "price",
            "currency",
            "billing_period_months",
            "trial_days",
            "earn_multiplier",
            "renewal_bonus_points",
            "granted_tier",
            "is_active",
        )

    def clean_price(self):
        value = self.cleaned_data["price"]
        if value is not None and value <= 0:
            raise ValidationError("The price must be above 0.")
        return value

    def clean_earn_multiplier(self):
        value = self.cleaned_data["earn_multiplier"]
        if value is not None and value < 1:
            raise ValidationError("The earn multiplier must be at least 1.")
        return value


# -- reward code pool ------------------------------------------------------------------------

MAX_GENERATED_CODES = 10_000
CODE_LENGTH = RewardCode._meta.get_field("code").max_length


class GenerateCodesForm(forms.Form):
    count = forms.IntegerField(
        label="Number of codes", min_value=1, max_value=MAX_GENERATED_CODES, initial=100
    )
    prefix = forms.CharField(max_length=10, required=False, help_text="Optional, e.g. SPRING-")

    def clean_prefix(self):
        value = self.cleaned_data["prefix"].strip()
        if not re.fullmatch(r"[A-Za-z0-9_-]*", value):
            raise ValidationError("Use letters, digits, - and _ only.")
        return value


class UploadCodesForm(forms.Form):
    """Codes pasted one per line, or a CSV / text file whose first column holds the codes."""

    codes = forms.CharField(
        label="Codes (one per line)", widget=forms.Textarea(attrs={"rows": 8}), required=False
    )
    file = forms.FileField(
        label="Or a CSV or text file",
        required=False,
        help_text="The first column holds the code; a header row named “code” is skipped.",
    )

    MAX_BYTES = 5 * 1024 * 1024

    def clean(self):
        cleaned = super().clean()
        text = cleaned.get("codes") or ""
        upload = cleaned.get("file")
        if upload is not None:
            if upload.size > self.MAX_BYTES:
                raise ValidationError("The file is larger than 5 MB.")
            try:
                text = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise ValidationError("The file is not UTF-8 text.") from exc
        codes, errors = parse_codes(text)
        if errors:
            raise ValidationError(errors)
        if not codes:
            raise ValidationError("Paste codes or choose a file.")
        cleaned["parsed_codes"] = codes
        return cleaned


def parse_codes(text: str) -> tuple[list[str], list[str]]:
    """(codes, errors by line number) from lines or CSV rows; the first cell is the code."""
    codes: list[str] = []
    errors: list[str] = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cell = row[0].strip() if row else ""
        if not cell or (number == 1 and cell.lower() == "code"):
            continue
        if len(cell) > CODE_LENGTH:
            errors.append(f"Line {number}: the code is longer than {CODE_LENGTH} characters.")
        elif any(ch.isspace() for ch in cell):
            errors.append(f"Line {number}: a code cannot contain spaces.")
        else:
            codes.append(cell)
    return codes, errors


# -- support and simulator -------------------------------------------------------------------

ADJUST_KEY_PATTERN = re.compile(r"^admin-adjust:[0-9a-f]{32}$")


def new_adjust_key() -> str:
    return f"admin-adjust:{uuid.uuid4().hex}"


class AdjustPointsForm(forms.Form):
    """A support correction. The hidden key is made when the form is shown, so submitting the
    same form twice adjusts once."""

    member = MemberField()
    points = forms.IntegerField(
        help_text="Positive adds points, negative takes them away.",
        min_value=-10_000_000,
        max_value=10_000_000,
    )
    reason = forms.CharField(max_length=255, help_text="Kept on the ledger line, with your name.")
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", new_adjust_key())

    def clean_points(self):
        value = self.cleaned_data["points"]
        if value == 0:
            raise ValidationError("Enter a number of points other than 0.")
        return value

    def clean_reason(self):
        value = self.cleaned_data["reason"].strip()
        if not value:
            raise ValidationError("A reason is required.")
        return value

    def clean_idempotency_key(self):
        value = self.cleaned_data["idempotency_key"]
        if not ADJUST_KEY_PATTERN.match(value):
            raise ValidationError("This form is out of date; open it again.")
        return value


EVENT_TYPES = (
    "purchase",
    "signup",
    "birthday",
    "review",
    "share",
    "referral",
    "survey_completed",
)


class SimulateEventForm(forms.Form):
    member = MemberField()
    event_type = forms.CharField(
        max_length=50,
        initial="purchase",
        help_text="purchase, signup, birthday, review, share, referral, survey_completed or a "
        "custom type",
        widget=forms.TextInput(attrs={"list": "event-types"}),
    )
    amount = forms.DecimalField(
        max_digits=12, decimal_places=2, required=False, min_value=Decimal("0")
    )
    currency = forms.CharField(max_length=3, required=False, help_text="Empty: the program's")
    channel = forms.CharField(max_length=20, required=False)
    touchpoint = forms.CharField(max_length=100, required=False)
    order_id = forms.CharField(label="Order id", max_length=100, required=False)
    occurred_at = forms.DateTimeField(
        label="Occurred at",
        required=False,
        help_text="Empty: now",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    properties = forms.CharField(
        label="Properties (JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text='e.g. {"items": [{"sku": "A1", "category": "shoes", "amount": "30"}]}',
    )

    event_types = EVENT_TYPES

    def clean_event_type(self):
        value = self.cleaned_data["event_type"].strip()
        if not re.fullmatch(r"[a-z0-9_]+", value):
            raise ValidationError("Use lower-case letters, digits and _ only.")
        return value

    def clean_currency(self):
        value = self.cleaned_data["currency"].strip().upper()
        if value and not re.fullmatch(r"[A-Z]{3}", value):
            raise ValidationError("A three-letter currency code, e.g. EUR.")
        return value

    def clean_properties(self):
        text = self.cleaned_data["properties"].strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).") from exc
        if not isinstance(value, dict):
            raise ValidationError("Properties must be a JSON object, e.g. {}.")
        return value

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("event_type") == "purchase" and cleaned.get("amount") is None:
            self.add_error("amount", "A purchase needs an amount.")
        return cleaned

    def event(self) -> EventInput:
        data = self.cleaned_data
        return EventInput(
            event_type=data["event_type"],
            occurred_at=data["occurred_at"],
            amount=data["amount"],
            currency=data["currency"],
            channel=data["channel"],
            touchpoint=data["touchpoint"],
            order_id=data["order_id"],
            properties=data["properties"],
        )


class CancelRedemptionsForm(forms.Form):
    reason = forms.CharField(
        max_length=200, help_text="Kept on the redemption and on the ledger line that refunds it."
    )

    def clean_reason(self):
        value = self.cleaned_data["reason"].strip()
        if not value:
            raise ValidationError("A reason is required.")
        return value
