"""The marketer's screens for the journey: stages with their rules, touchpoints, custom event
types and settings. Events, journeys and stage moves are read-only lists: only the services
write them."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse

from rewards.admin import ReadOnlyAdmin, member_link

from .models import (
    AllowedEventType,
    CustomerEvent,
    JourneySettings,
    JourneyStage,
    MemberJourney,
    StageRule,
    StageTransition,
    Touchpoint,
)
from .selectors import journey_settings


class StageRuleInline(admin.TabularInline):
    model = StageRule
    extra = 0
    fields = ("kind", "event_type", "count", "window_days", "days", "active")


@admin.register(JourneyStage)
class JourneyStageAdmin(admin.ModelAdmin):
    list_display = ("order", "name", "slug", "kind", "rules_summary")
    list_display_links = ("name",)
    list_editable = ("order",)
    list_filter = ("kind",)
    prepopulated_fields = {"slug": ("name",)}
    fields = ("order", "name", "slug", "kind", "description")
    inlines = [StageRuleInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("rules")

    @admin.display(description="Rules")
    def rules_summary(self, stage):
        return "; ".join(rule.describe() for rule in stage.rules.all() if rule.active) or "—"


@admin.register(StageRule)
class StageRuleAdmin(admin.ModelAdmin):
    list_display = ("stage", "kind", "event_type", "count", "window_days", "days", "active")
    list_filter = ("kind", "active", "stage")
    list_select_related = ("stage",)
    fields = ("stage", "kind", "event_type", ("count", "window_days"), "days", "active")


@admin.register(Touchpoint)
class TouchpointAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "channel", "stage")
    list_filter = ("channel", "stage")
    search_fields = ("name", "slug")
    list_select_related = ("stage",)
    prepopulated_fields = {"slug": ("name",)}


@admin.register(AllowedEventType)
class AllowedEventTypeAdmin(admin.ModelAdmin):
    list_display = ("name", "description", "active")
    list_filter = ("active",)
    search_fields = ("name",)


@admin.register(JourneySettings)
class JourneySettingsAdmin(admin.ModelAdmin):
    """One row: the list goes straight to it."""

    fields = ("cart_abandon_hours",)

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        row = journey_settings()
        return redirect(reverse("admin:journeys_journeysettings_change", args=[row.pk]))

    def get_object(self, request, object_id, from_field=None):
        if str(object_id) == str(JourneySettings.SINGLETON_ID):
            return journey_settings()
        return None

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CustomerEvent)
class CustomerEventAdmin(ReadOnlyAdmin):
    list_display = (
        "occurred_at",
        "event_type",
        "member_link",
        "channel",
        "touchpoint",
        "amount",
        "currency",
        "points_awarded",
        "source",
    )
    list_filter = (
        "event_type",
        "channel",
        "source",
        ("occurred_at", admin.DateFieldListFilter),
        "touchpoint",
    )
    search_fields = (
        "=member__member_number",
        "=member__external_id",
        "=order_id",
        "=idempotency_key",
    )
    date_hierarchy = "occurred_at"
    list_select_related = ("member", "touchpoint")
    show_full_result_count = False  # counting millions of events on every page is slow
    fields = (
        "member",
        "event_type",
        "occurred_at",
        "received_at",
        "channel",
        "touchpoint",
        "amount",
        "currency",
        "order_id",
        "properties",
        "idempotency_key",
        "source",
        "points_awarded",
        "response",
    )
    readonly_fields = fields

    @admin.display(description="Member", ordering="member")
    def member_link(self, event):
        return member_link(event.member)


@admin.register(MemberJourney)
class MemberJourneyAdmin(ReadOnlyAdmin):
    list_display = ("member_link", "stage", "entered_at", "last_activity_at")
    list_filter = ("stage",)
    search_fields = ("=member__member_number", "=member__external_id", "member__email")
    list_select_related = ("member", "stage")
    fields = ("member", "stage", "entered_at", "last_activity_at", "last_lifecycle_stage")
    readonly_fields = fields

    @admin.display(description="Member", ordering="member")
    def member_link(self, journey):
        return member_link(journey.member)


@admin.register(StageTransition)
class StageTransitionAdmin(ReadOnlyAdmin):
    list_display = ("at", "member_link", "from_stage", "to_stage", "cause", "event", "rule")
    list_filter = ("to_stage", "cause", ("at", admin.DateFieldListFilter))
    search_fields = ("=member__member_number", "=member__external_id")
    date_hierarchy = "at"
    list_select_related = ("member", "from_stage", "to_stage", "rule__stage", "event")
    show_full_result_count = False
    fields = ("member", "from_stage", "to_stage", "at", "cause", "event", "rule")
    readonly_fields = fields

    @admin.display(description="Member", ordering="member")
    def member_link(self, transition):
        return member_link(transition.member)
