"""Sections of the member's admin page (registered in apps.py): the activity timeline Support
reads when a member calls, and the member's moves between stages. Read-only."""

from django.contrib import admin
from django.forms.models import BaseInlineFormSet

from .models import CustomerEvent, StageTransition

TIMELINE_LENGTH = 50


class LatestEventsFormSet(BaseInlineFormSet):
    """Only the newest events: a member's timeline can be long."""

    def get_queryset(self):
        if not hasattr(self, "_latest"):
            self._latest = super().get_queryset().order_by("-occurred_at", "-id")[:TIMELINE_LENGTH]
        return self._latest


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    max_num = 0

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MemberEventsInline(ReadOnlyInline):
    model = CustomerEvent
    formset = LatestEventsFormSet
    fk_name = "member"
    verbose_name = "event"
    verbose_name_plural = f"activity timeline (latest {TIMELINE_LENGTH} events)"
    fields = (
        "occurred_at",
        "event_type",
        "channel",
        "touchpoint",
        "amount",
        "currency",
        "order_id",
        "points_awarded",
        "source",
    )
    readonly_fields = fields
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("touchpoint")


class MemberTransitionsInline(ReadOnlyInline):
    model = StageTransition
    fk_name = "member"
    verbose_name = "stage move"
    verbose_name_plural = "journey stage moves"
    fields = ("at", "from_stage", "to_stage", "cause", "event")
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("from_stage", "to_stage", "event")
            .order_by("-at", "-id")
        )


MEMBER_ADMIN_INLINES = (MemberEventsInline, MemberTransitionsInline)
