"""Admin for pipeline runs, model fits, snapshots and the pipeline's settings.

Snapshots are written only by the pipeline, so their screens are read-only lists; an analyst may
run the pipeline again for the dates of selected runs (it replaces those dates' snapshots)."""

from django.contrib import admin, messages

from rewards.admin import ReadOnlyAdmin, member_link

from .models import (
    AnalyticsSettings,
    CohortRetention,
    KpiSnapshot,
    MemberMetrics,
    ModelFit,
    PipelineRun,
)
from .pipeline import run_pipeline


@admin.register(PipelineRun)
class PipelineRunAdmin(ReadOnlyAdmin):
    list_display = ("as_of", "status", "trigger", "started_at", "finished_at", "took", "chunks")
    list_display += ("rows", "short_error")
    list_filter = ("status", "trigger")
    date_hierarchy = "as_of"
    readonly_fields = [f.name for f in PipelineRun._meta.fields]
    actions = ["run_again"]

    @admin.display(description="took")
    def took(self, obj):
        return f"{obj.duration.total_seconds():.1f} s" if obj.duration else "—"

    @admin.display(description="error")
    def short_error(self, obj):
        return obj.error.splitlines()[-1][:120] if obj.error else ""

    def has_run_permission(self, request):
        return request.user.has_perm("analytics.add_pipelinerun")

    @admin.action(description="Run the pipeline again for these dates", permissions=["run"])
    def run_again(self, request, queryset):
        for as_of in sorted(set(queryset.values_list("as_of", flat=True))):
            try:
                run = run_pipeline(as_of=as_of, trigger="admin", wait=False)
            except Exception as exc:  # the run is recorded as failed with its error
                self.message_user(request, f"Run as of {as_of} failed: {exc}", messages.ERROR)
                continue
            self.message_user(request, f"Run as of {as_of}: {run.get_status_display().lower()}.")


@admin.register(ModelFit)
class ModelFitAdmin(ReadOnlyAdmin):
    list_display = ("as_of", "model", "scope", "parameters", "log_likelihood", "n_customers")
    list_display += ("time_unit", "converged")
    list_filter = ("model", "converged")
    date_hierarchy = "as_of"
    readonly_fields = [f.name for f in ModelFit._meta.fields]

    @admin.display(description="parameters")
    def parameters(self, obj):
        return ", ".join(f"{name} = {value:.4g}" for name, value in obj.params.items())


@admin.register(KpiSnapshot)
class KpiSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("as_of", "kpi", "value", "run")
    list_filter = ("kpi",)
    date_hierarchy = "as_of"
    readonly_fields = [f.name for f in KpiSnapshot._meta.fields]


@admin.register(CohortRetention)
class CohortRetentionAdmin(ReadOnlyAdmin):
    list_display = ("as_of", "basis", "cohort", "period", "size", "retained", "share")
    list_display += ("projected",)
    list_filter = ("basis",)
    date_hierarchy = "as_of"
    readonly_fields = [f.name for f in CohortRetention._meta.fields]

    @admin.display(description="retained share")
    def share(self, obj):
        return "—" if obj.rate is None else f"{obj.rate:.1%}"


@admin.register(MemberMetrics)
class MemberMetricsAdmin(ReadOnlyAdmin):
    list_display = ("member_link", "as_of", "purchase_days", "frequency", "recency_days")
    list_display += ("tenure_days", "monetary", "p_alive", "clv_12m", "clv_band", "churn_risk")
    list_display += ("rfm_segment",)
    list_filter = ("rfm_segment", "churn_risk", "clv_band")
    search_fields = ("member__member_number", "member__email", "member__external_id")
    list_select_related = ("member",)
    readonly_fields = [f.name for f in MemberMetrics._meta.fields]
    show_full_result_count = False

    @admin.display(description="member", ordering="member_id")
    def member_link(self, obj):
        return member_link(obj.member)


@admin.register(AnalyticsSettings)
class AnalyticsSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "clv_discount_rate", "churn_high_below", "churn_medium_below")
    list_display += ("lapsed_after_days", "members_per_chunk")

    def has_add_permission(self, request):
        return not AnalyticsSettings.objects.exists() and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False
