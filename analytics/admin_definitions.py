"""Admin for segments and goals.

Segments: a form with choices for the list rules and cross-field checks, a live count while the
marketer edits (static/analytics/segment_count.js posts the form to `count/`, answered with the
number of members matching now), "Refresh now", and a CSV of the refreshed membership (action,
or the button on a segment's page; streamed). Goals: baseline prefilled from the latest KPI
snapshot, target from a relative change, owner defaulting to the current user, status in the
list.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from .forms import GoalForm, SegmentForm
from .goals import GoalStatus, evaluate, with_current_values
from .models import Goal, Segment, SegmentMembership
from .pipeline.common import local_today
from .reports import csv_response, csv_safe_text, resolve_as_of
from .segments import count_matching, refresh_segments

EXPORT_COLUMNS = [
    "segment",
    "member_number",
    "email",
    "first_name",
    "last_name",
    "country",
    "enrollment_channel",
    "marketing_consent",
    "added_at",
]


def export_members_csv(segment_ids: list[int], filename: str) -> StreamingHttpResponse:
    """The refreshed members of the segments, streamed (a large segment is not held in
    memory)."""
    rows = (
        SegmentMembership.objects.filter(segment_id__in=segment_ids)
        .order_by("segment__name", "member__member_number")
        .values_list(
            "segment__slug",
            "member__member_number",
            "member__email",
            "member__first_name",
            "member__last_name",
            "member__country",
            "member__enrollment_channel",
            "member__marketing_consent",
            "added_at",
        )
    )

    def lines():
        yield EXPORT_COLUMNS
        for row in rows.iterator(chunk_size=5000):
            *fields, added_at = row
            yield [*(csv_safe_text(v) if isinstance(v, str) else v for v in fields), added_at]

    return csv_response(lines(), filename)


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentForm
    change_form_template = "admin/analytics/segment/change_form.html"
    list_display = ("name", "active", "member_count", "refreshed_at", "created_by")
    list_filter = ("active",)
    search_fields = ("name", "description")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("tiers", "stages")
    readonly_fields = ("member_count", "refreshed_at", "created_by", "created_at", "updated_at")
    actions = ("refresh_now", "export_members")
    fieldsets = (
        (None, {"fields": ("name", "slug", "description", "active")}),
        ("Program", {"fields": ("tiers", "stages", "enrollment_channels")}),
        (
            "Value and loyalty (from the nightly pipeline)",
            {
                "fields": (
                    "rfm_segments",
                    "clv_bands",
                    ("min_clv", "max_clv"),
                    ("min_p_alive", "max_p_alive"),
                )
            },
        ),
        ("Activity", {"fields": ("active_within_days", "inactive_for_days")}),
        (
            "Profile",
            {"fields": ("countries", ("min_age", "max_age"), "marketing_consent")},
        ),
        (
            "Membership",
            {"fields": ("member_count", "refreshed_at", "created_by", "created_at", "updated_at")},
        ),
    )

    class Media:
        js = ("analytics/segment_count.js",)
        css = {"all": ("analytics/segment_admin.css",)}

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def get_urls(self):
        return [
            path(
                "count/",
                self.admin_site.admin_view(self.count_view),
                name="analytics_segment_count",
            ),
            path(
                "<path:object_id>/members.csv",
                self.admin_site.admin_view(self.export_view),
                name="analytics_segment_export",
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["count_url"] = reverse("admin:analytics_segment_count")
        if obj is not None and obj.pk:
            context["export_url"] = reverse("admin:analytics_segment_export", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)

    @staticmethod
    def _count_text(count: int) -> str:
        return f"{count:,} member{'s' if count != 1 else ''} match{'' if count != 1 else 'es'}"

    def count_view(self, request):
        """The live count: the rules as currently entered in the form, counted now."""
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        return _count(request, self._count_text)

    def export_view(self, request, object_id):
        segment = get_object_or_404(Segment, pk=object_id)
        if not self.has_view_or_change_permission(request, segment):
            raise PermissionDenied
        return export_members_csv([segment.pk], f"segment-{segment.slug}.csv")

    @admin.action(description="Refresh membership now", permissions=["change"])
    def refresh_now(self, request, queryset):
        counts = refresh_segments(segment_ids=list(queryset.values_list("pk", flat=True)))
        names = dict(queryset.values_list("pk", "name"))
        summary = "; ".join(f"{names[pk]}: {count:,}" for pk, count in counts.items())
        self.message_user(
            request, f"Refreshed {len(counts)} segment(s). {summary}", messages.SUCCESS
        )

    @admin.action(description="Export members as CSV", permissions=["view"])
    def export_members(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        return export_members_csv(ids, f"segments-{timezone.now():%Y%m%d-%H%M}.csv")


@require_POST
def _count(request, text):
    form = SegmentForm(request.POST)
    form.is_valid()
    errors = form.rule_errors()
    if errors:
        # A half-typed rule is not a failed request: 200, so the browser logs no error.
        return JsonResponse({"count": None, "errors": errors})
    count = count_matching(form.rules())
    return JsonResponse({"count": count, "text": text(count)})


@admin.register(Goal)
class GoalAdmin(admin.ModelAdmin):
    form = GoalForm
    list_display = ("name", "kpi", "baseline", "target", "deadline", "owner", "status")
    list_filter = ("kpi", "owner")
    search_fields = ("name", "notes")
    date_hierarchy = "deadline"

    def get_queryset(self, request):
        """With each goal's current KPI value as of the latest run: the status column costs
        no query per row."""
        as_of = resolve_as_of(None).date or local_today()
        return with_current_values(super().get_queryset(request), as_of=as_of).select_related(
            "owner"
        )

    readonly_fields = ("status",)

    def get_fields(self, request, obj=None):
        fields = list(GoalForm.Meta.fields)
        return [*fields, "status"] if obj is not None else fields

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("owner", request.user.pk)
        return initial

    @admin.display(description="Status")
    def status(self, obj):
        progress = evaluate(goal=obj, current=obj.current_value, current_on=obj.current_on)
        if progress.status == GoalStatus.NO_DATA:
            return progress.status_label
        return format_html(
            "{} <span class='help'>({}% of the way)</span>",
            progress.status_label,
            round(progress.progress * 100),
        )
