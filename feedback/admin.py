"""The marketer's survey screens and Support's follow-up list.

Surveys and their questions are edited through validated forms; invitations and responses are
read-only (written by feedback.services); a follow-up is worked through its change form, whose
save calls services.update_follow_up (resolving needs an outcome).
"""

from django import forms
from django.contrib import admin
from django.db.models import Count, Q
from django.forms.models import BaseInlineFormSet
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join

from journeys.models import STANDARD_EVENT_TYPES, AllowedEventType
from rewards.admin import ReadOnlyAdmin, ReadOnlyTabularInline, member_link

from . import services
from .models import (
    Answer,
    FollowUp,
    FollowUpStatus,
    Invitation,
    Question,
    QuestionKind,
    Survey,
    SurveyKind,
    SurveyResponse,
)


def _when(moment) -> str:
    if moment is None:
        return "—"
    return formats.date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


# -- surveys ---------------------------------------------------------------------------------


class QuestionFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        if any(self.errors):
            return
        kinds = [
            form.cleaned_data.get("kind")
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        if not kinds:
            raise forms.ValidationError("Add at least one question.")
        survey_kind = self.instance.kind
        if survey_kind == SurveyKind.NPS and QuestionKind.NPS not in kinds:
            raise forms.ValidationError("An NPS survey needs an NPS question (0–10).")
        if survey_kind in (SurveyKind.CSAT, SurveyKind.CES) and QuestionKind.RATING not in kinds:
            raise forms.ValidationError(
                "A CSAT or CES survey needs a rating question (1–5): that is its score."
            )


class QuestionInline(admin.TabularInline):
    model = Question
    formset = QuestionFormSet
    extra = 1
    fields = ("order", "text", "kind", "required", "options", "low_label", "high_label")


class SurveyForm(forms.ModelForm):
    class Meta:
        model = Survey
        fields = (
            "name",
            "slug",
            "kind",
            "title",
            "intro",
            "points",
            "active",
            "starts_at",
            "ends_at",
            "open_to_all",
            "trigger_event_type",
            "trigger_touchpoint",
            "trigger_stage",
            "delay_hours",
            "cooldown_days",
            "invitation_valid_days",
        )

    def clean_trigger_event_type(self):
        value = self.cleaned_data["trigger_event_type"].strip()
        if (
            value
            and value not in STANDARD_EVENT_TYPES
            and not AllowedEventType.objects.filter(name=value, active=True).exists()
        ):
            raise forms.ValidationError(
                "Unknown event type: use a standard type or one the program allows."
            )
        return value


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    form = SurveyForm
    inlines = [QuestionInline]
    prepopulated_fields = {"slug": ("name",)}
    list_display = (
        "name",
        "kind",
        "trigger",
        "active",
        "starts_at",
        "ends_at",
        "points",
        "invitations_sent",
        "responses_count",
    )
    list_filter = ("kind", "active")
    search_fields = ("name", "slug", "title")
    fieldsets = (
        (None, {"fields": ("name", "slug", "kind", "title", "intro", "points")}),
        ("When it runs", {"fields": ("active", "starts_at", "ends_at", "open_to_all")}),
        (
            "Trigger",
            {
                "fields": (
                    "trigger_event_type",
                    "trigger_touchpoint",
                    "trigger_stage",
                    "delay_hours",
                    "cooldown_days",
                    "invitation_valid_days",
                )
            },
        ),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("trigger_touchpoint", "trigger_stage")
            .annotate(
                sent=Count(
                    "invitations", filter=Q(invitations__sent_at__isnull=False), distinct=True
                ),
                answered=Count("responses", distinct=True),
            )
        )

    @admin.display(description="Trigger")
    def trigger(self, obj):
        if not obj.trigger_event_type:
            return "—"
        parts = [obj.trigger_event_type]
        if obj.trigger_touchpoint:
            parts.append(f"at {obj.trigger_touchpoint}")
        if obj.trigger_stage:
            parts.append(f"in {obj.trigger_stage}")
        if obj.delay_hours:
            parts.append(f"+{obj.delay_hours} h")
        return " ".join(parts)

    @admin.display(description="Invitations sent", ordering="sent")
    def invitations_sent(self, obj):
        return obj.sent

    @admin.display(description="Responses", ordering="answered")
    def responses_count(self, obj):
        return obj.answered


# -- invitations and responses ---------------------------------------------------------------


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ("survey", "member_link", "status", "event_type", "send_after", "sent_at")
    list_filter = ("status", "survey")
    list_select_related = ("survey", "member")
    search_fields = ("member__member_number", "member__email")
    exclude = ("token",)
    date_hierarchy = "created_at"

    @admin.display(description="Member")
    def member_link(self, obj):
        return member_link(obj.member)


class AnswerInline(ReadOnlyTabularInline):
    model = Answer
    show_change_link = False
    fields = ("question", "metric", "score", "choices", "text")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("question")


@admin.register(SurveyResponse)
class SurveyResponseAdmin(ReadOnlyAdmin):
    inlines = [AnswerInline]
    list_display = (
        "survey",
        "member_link",
        "submitted_at",
        "answered_via",
        "stage",
        "touchpoint",
        "channel",
        "tier",
        "points_awarded",
    )
    list_filter = ("survey", "answered_via", "channel", "stage", "tier")
    list_select_related = ("survey", "member", "stage", "touchpoint", "tier")
    search_fields = ("member__member_number", "member__email")
    date_hierarchy = "submitted_at"

    @admin.display(description="Member")
    def member_link(self, obj):
        return member_link(obj.member)


# -- follow-ups ------------------------------------------------------------------------------


class OverdueFilter(admin.SimpleListFilter):
    title = "due"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue"), ("pending", "Not resolved")]

    def queryset(self, request, queryset):
        unresolved = queryset.exclude(status=FollowUpStatus.RESOLVED)
        if self.value() == "overdue":
            return unresolved.filter(due_at__lt=timezone.now())
        if self.value() == "pending":
            return unresolved
        return queryset


class FollowUpForm(forms.ModelForm):
    class Meta:
        model = FollowUp
        fields = ("status", "assignee", "due_at", "notes", "outcome")

    def clean(self):
        data = super().clean()
        if (
            data.get("status") == FollowUpStatus.RESOLVED
            and not (data.get("outcome") or "").strip()
        ):
            self.add_error("outcome", "Record the outcome to resolve the follow-up.")
        return data


@admin.register(FollowUp)
class FollowUpAdmin(admin.ModelAdmin):
    form = FollowUpForm
    list_display = (
        "reason",
        "member_link",
        "status",
        "assignee",
        "due",
        "created_at",
        "resolved_at",
    )
    list_filter = ("status", OverdueFilter, "assignee")
    list_select_related = ("member", "assignee")
    search_fields = ("member__member_number", "member__email", "member__last_name", "reason")
    ordering = ("status", "due_at")
    readonly_fields = (
        "member_link",
        "reason",
        "answers",
        "created_at",
        "resolved_at",
        "resolved_by",
    )
    fieldsets = (
        ("What happened", {"fields": ("member_link", "reason", "answers", "created_at")}),
        ("Follow-up", {"fields": ("status", "assignee", "due_at", "notes", "outcome")}),
        ("Resolution", {"fields": ("resolved_at", "resolved_by")}),
    )

    class Media:
        css = {"all": ("feedback/admin.css",)}

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Member")
    def member_link(self, obj):
        return member_link(obj.member)

    @admin.display(description="Due", ordering="due_at")
    def due(self, obj):
        text = _when(obj.due_at)
        if obj.is_overdue(timezone.now()):
            return format_html('<span class="overdue" title="Overdue">{} · overdue</span>', text)
        return text

    @admin.display(description="Answers")
    def answers(self, obj):
        rows = obj.response.answers.select_related("question")
        return format_html(
            "<ul class='follow-up-answers'>{}</ul>",
            format_html_join(
                "",
                "<li><strong>{}</strong>: {}</li>",
                ((a.question.text, a.display()) for a in rows),
            ),
        )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        services.update_follow_up(
            follow_up=obj,
            actor=request.user,
            status=data["status"],
            assignee=data.get("assignee"),
            notes=data.get("notes", ""),
            due_at=data.get("due_at"),
            outcome=data.get("outcome", ""),
        )


class MemberSurveyResponsesInline(ReadOnlyTabularInline):
    model = SurveyResponse
    verbose_name_plural = "survey responses"
    fk_name = "member"
    fields = ("submitted_at", "survey", "answered_via", "points_awarded")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("survey")


MEMBER_ADMIN_INLINES = (MemberSurveyResponsesInline,)
