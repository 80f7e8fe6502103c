"""Forms of the campaigns admin: the campaign itself (validated as a whole) and the preview."""

from django import forms
from django.core.exceptions import ValidationError
from django.template import TemplateSyntaxError

from rewards.forms import MemberField

from . import messages
from .models import Campaign, OfferKind, Schedule


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "name",
            "description",
            "segment",
            "channel",
            "schedule",
            "send_at",
            "trigger_stage",
            "starts_at",
            "ends_at",
            "control_share",
            "offer_kind",
            "offer_title",
            "offer_description",
            "multiplier",
            "multiplier_event_type",
            "bonus_points",
            "reward",
            "points_budget",
            "subject_template",
            "body_template",
            "conversion_days",
        ]
        widgets = {
            "body_template": forms.Textarea(attrs={"rows": 10}),
            "description": forms.Textarea(attrs={"rows": 3}),
            "offer_description": forms.Textarea(attrs={"rows": 3}),
        }

    def _clean_template(self, name: str) -> str:
        source = self.cleaned_data.get(name) or ""
        try:
            messages.check_template(source)
        except TemplateSyntaxError as exc:
            raise ValidationError(f"Template error: {exc}", code="template") from exc
        return source

    def clean_subject_template(self):
        return self._clean_template("subject_template")

    def clean_body_template(self):
        return self._clean_template("body_template")

    def clean(self):
        data = super().clean()
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "The end must be after the start.")
        send_at = data.get("send_at")
        if send_at and ends and send_at >= ends:
            self.add_error("send_at", "The send time must be before the end.")
        schedule = data.get("schedule")
        if schedule == Schedule.STAGE_ENTRY and not data.get("trigger_stage"):
            self.add_error("trigger_stage", "Choose the stage whose entry triggers the campaign.")
        if schedule != Schedule.STAGE_ENTRY and not data.get("segment"):
            self.add_error("segment", "Choose the segment the campaign targets.")
        kind = data.get("offer_kind")
        required = {
            OfferKind.MULTIPLIER: ("multiplier", "Give the multiplier, e.g. 2 for double points."),
            OfferKind.BONUS: ("bonus_points", "Give the bonus points."),
            OfferKind.REWARD: ("reward", "Choose the reward."),
        }
        if kind in required:
            field, message = required[kind]
            if not data.get(field):
                self.add_error(field, message)
        if kind != OfferKind.NONE and not data.get("offer_title"):
            self.add_error("offer_title", "Give the offer a title: members see it in the portal.")
        if data.get("points_budget") is not None and kind not in (
            OfferKind.MULTIPLIER,
            OfferKind.BONUS,
        ):
            self.add_error("points_budget", "A points budget applies to points offers only.")
        return data


class PreviewForm(forms.Form):
    member = MemberField(help_text="Whose message to render (number or email)")
    send_test = forms.BooleanField(required=False, widget=forms.HiddenInput)
