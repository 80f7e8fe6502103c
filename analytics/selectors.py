"""Reads of the pipeline's snapshots, shared by the API, the admin and the pipeline itself."""

from __future__ import annotations

from datetime import date

from django.db.models import Max, QuerySet

from .models import (
    AnalyticsSettings,
    CohortRetention,
    KpiSnapshot,
    MemberMetrics,
    ModelFit,
)


def analytics_settings() -> AnalyticsSettings:
    """The pipeline's settings row, created with defaults on first read."""
    row, _ = AnalyticsSettings.objects.get_or_create(pk=AnalyticsSettings.SINGLETON_ID)
    return row


def latest_kpi_date() -> date | None:
    return KpiSnapshot.objects.aggregate(latest=Max("as_of"))["latest"]


def kpis_on(as_of: date) -> QuerySet[KpiSnapshot]:
    return KpiSnapshot.objects.filter(as_of=as_of).order_by("kpi")


def latest_cohort_date() -> date | None:
    return CohortRetention.objects.aggregate(latest=Max("as_of"))["latest"]


def cohort_cells(*, as_of: date, basis: str | None = None) -> QuerySet[CohortRetention]:
    cells = CohortRetention.objects.filter(as_of=as_of)
    if basis:
        cells = cells.filter(basis=basis)
    return cells.order_by("basis", "cohort", "period")


def latest_model_fits() -> list[ModelFit]:
    """The newest fit of each model and scope (by as-of date, then fitting time)."""
    fits = ModelFit.objects.order_by("model", "scope", "-as_of", "-fitted_at", "-id").distinct(
        "model", "scope"
    )
    return list(fits)


def member_metrics(member_id: int) -> MemberMetrics | None:
    return MemberMetrics.objects.filter(member_id=member_id).first()
