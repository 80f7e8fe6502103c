"""Admin forms for segments and goals: choices for the JSON list rules, cross-field checks that
become form errors, and the goal's helpers (baseline from the latest snapshot, target from a
relative change)."""

import re
from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model

from members.models import Channel

from .goals import latest_kpi_value, target_from_change
from .models import LOWER_IS_BETTER, ClvBand, Goal, Kpi, RfmSegment, Segment
from .pipeline.common import local_today
from .segments import SegmentRules

COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")
RULE_FIELDS = (
    "tiers",
    "stages",
    "rfm_segments",
    "clv_bands",
    "min_clv",
    "max_clv",
    "min_p_alive",
    "max_p_alive",
    "active_within_days",
    "inactive_for_days",
    "enrollment_channels",
    "countries",
    "min_age",
    "max_age",
    "marketing_consent",
)


class CountryCodesField(forms.CharField):
    """ISO 3166-1 alpha-2 codes typed as 'NL, de be': a de-duplicated upper-case list."""

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        codes = []
        for code in re.split(r"[\s,;]+", text.strip().upper()):
            if code and code not in codes:
                codes.append(code)
        return codes

    def validate(self, value):
        super().validate(value)
        bad = [code for code in value if not COUNTRY_CODE.match(code)]
        if bad:
            raise forms.ValidationError(
                "Use two-letter ISO country codes separated by commas (e.g. NL, DE); "
                f"not valid: {', '.join(bad)}.",
                code="invalid_country",
            )


class SegmentForm(forms.ModelForm):
    rfm_segments = forms.MultipleChoiceField(
        label="RFM segments",
        choices=RfmSegment.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Any of these (from the nightly pipeline).",
    )
    clv_bands = forms.MultipleChoiceField(
        label="CLV bands",
        choices=ClvBand.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Any of these bands of 12-month customer lifetime value.",
    )
    enrollment_channels = forms.MultipleChoiceField(
        choices=Channel.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Any of these channels.",
    )
    countries = CountryCodesField(
        required=False,
        help_text="Two-letter ISO codes separated by commas, e.g. NL, BE, DE.",
    )

    class Meta:
        model = Segment
        fields = ["name", "slug", "description", "active", *RULE_FIELDS]
        labels = {
            "min_clv": "Minimum CLV (12 months)",
            "max_clv": "Maximum CLV (12 months)",
            "min_p_alive": "Minimum probability alive",
            "max_p_alive": "Maximum probability alive",
            "active_within_days": "Last activity within (days)",
            "inactive_for_days": "No activity for at least (days)",
            "min_age": "Minimum age",
            "max_age": "Maximum age",
        }
        help_texts = {
            "tiers": "Any of these tiers.",
            "stages": "Any of these current journey stages.",
            "min_p_alive": "Between 0 and 1.",
            "max_p_alive": "Between 0 and 1.",
            "min_age": "Whole years today; members without a birth date never match an age rule.",
            "active_within_days": "The latest event, or the enrollment when there is none.",
        }

    def clean(self):
        data = super().clean()
        for low, high, what in (
            ("min_clv", "max_clv", "CLV"),
            ("min_p_alive", "max_p_alive", "probability alive"),
            ("min_age", "max_age", "age"),
        ):
            both = data.get(low) is not None and data.get(high) is not None
            if both and data[low] > data[high]:
                self.add_error(high, f"The maximum {what} must not be below the minimum.")
        for name in ("min_p_alive", "max_p_alive"):
            value = data.get(name)
            if value is not None and not 0 <= value <= 1:
                self.add_error(name, "A probability is between 0 and 1.")
        active, inactive = data.get("active_within_days"), data.get("inactive_for_days")
        if active is not None and inactive is not None and inactive >= active:
            self.add_error(
                "inactive_for_days",
                "With both activity rules, 'no activity for' must be shorter than 'last "
                "activity within', or no member can match.",
            )
        return data

    def rule_errors(self) -> dict:
        """Errors on the rule fields only (the live count ignores a missing name)."""
        return {name: errors for name, errors in self.errors.items() if name in RULE_FIELDS}

    def rules(self) -> SegmentRules:
        """The rules as entered; call after is_valid() (invalid rule fields are skipped)."""
        data = self.cleaned_data
        return SegmentRules.from_mapping(
            {name: data[name] for name in RULE_FIELDS if name in data and name not in self.errors}
        )


class GoalForm(forms.ModelForm):
    baseline = forms.DecimalField(
        max_digits=20,
        decimal_places=6,
        required=False,
        help_text="Leave empty to take the KPI's latest figure from the nightly snapshots.",
    )
    baseline_on = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Leave empty for the date of that figure (or today).",
    )
    target = forms.DecimalField(
        max_digits=20,
        decimal_places=6,
        required=False,
        help_text="The value to reach, or leave empty and give a change below.",
    )
    target_change = forms.CharField(
        label="Or change from baseline",
        required=False,
        max_length=20,
        help_text="Relative (+15%, -10%) or absolute (+0.05, -2); sets the target.",
    )

    class Meta:
        model = Goal
        fields = [
            "name",
            "kpi",
            "baseline",
            "baseline_on",
            "target",
            "target_change",
            "deadline",
            "owner",
            "notes",
        ]
        widgets = {"deadline": forms.DateInput(attrs={"type": "date"})}
        labels = {"kpi": "KPI"}
        help_texts = {
            "kpi": "Rates are fractions: a retention rate of 42% is 0.42.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "owner" in self.fields:
            self.fields["owner"].queryset = get_user_model().objects.filter(
                is_staff=True, is_active=True
            )

    def clean(self):
        data = super().clean()
        kpi = data.get("kpi")
        if kpi and data.get("baseline") is None:
            snapshot = latest_kpi_value(kpi)
            if snapshot is None:
                self.add_error("baseline", "There is no figure for this KPI yet: enter a baseline.")
            else:
                data["baseline"] = snapshot.value
                data["baseline_on"] = data.get("baseline_on") or snapshot.as_of
        if data.get("baseline_on") is None and "baseline_on" not in self.errors:
            data["baseline_on"] = local_today()
        baseline, change = data.get("baseline"), (data.get("target_change") or "").strip()
        if change and data.get("target") is not None:
            self.add_error("target_change", "Give either a target or a change, not both.")
        elif change and baseline is not None:
            try:
                data["target"] = target_from_change(baseline=baseline, change=change).quantize(
                    Decimal("0.000001")
                )
            except ValueError as exc:
                self.add_error("target_change", str(exc))
        elif data.get("target") is None and "target" not in self.errors:
            self.add_error("target", "Enter a target, or a change from the baseline.")
        target = data.get("target")
        if kpi and baseline is not None and target is not None and not self.errors:
            if target == baseline:
                self.add_error("target", "The target must differ from the baseline.")
            elif kpi in LOWER_IS_BETTER and target > baseline:
                self.add_error(
                    "target",
                    f"Lower is better for {Kpi(kpi).label.lower()}: the target must be below "
                    "the baseline.",
                )
            elif kpi not in LOWER_IS_BETTER and target < baseline:
                self.add_error(
                    "target",
                    f"Higher is better for {Kpi(kpi).label.lower()}: the target must be above "
                    "the baseline.",
                )
        deadline, baseline_on = data.get("deadline"), data.get("baseline_on")
        if deadline and baseline_on and deadline <= baseline_on:
            self.add_error("deadline", "The deadline must be after the baseline date.")
        return data
