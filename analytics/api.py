"""REST API of the analytics snapshots, under /api/v1/ (see loyalty_site/api_urls.py).

Read-only: the nightly pipeline writes every figure; these endpoints read the stored snapshots
(KPIs per day, cohort cells, model fits, a member's metrics) behind the analytics.view_*
permissions that the Analyst and Marketer roles hold.
"""

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from members.api_auth import HasPermission

from . import selectors
from .models import CohortBasis, CohortRetention, Kpi, MemberMetrics, ModelFit

NO_DATA = OpenApiResponse(description="No snapshot for that date (or no run yet).")
AS_OF = OpenApiParameter(
    "as_of",
    OpenApiTypes.DATE,
    description="The day (YYYY-MM-DD); default: the latest day with snapshots.",
)


class AsOfQuery(serializers.Serializer):
    as_of = serializers.DateField(required=False)


class CohortQuery(AsOfQuery):
    basis = serializers.ChoiceField(choices=CohortBasis.choices, required=False)


class KpiValueSerializer(serializers.Serializer):
    kpi = serializers.ChoiceField(choices=Kpi.choices)
    label = serializers.CharField()
    value = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True)


class KpiDaySerializer(serializers.Serializer):
    as_of = serializers.DateField()
    kpis = KpiValueSerializer(many=True)


class KpiView(APIView):
    """The program's KPIs on a day. Shares are 0-1; money in the program's currency."""

    permission_classes = [HasPermission.of("analytics.view_kpisnapshot")]

    @extend_schema(
        parameters=[AS_OF],
        responses={200: KpiDaySerializer, 404: NO_DATA},
        summary="Program KPIs as of a day",
    )
    def get(self, request):
        query = AsOfQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        as_of = query.validated_data.get("as_of") or selectors.latest_kpi_date()
        snapshots = list(selectors.kpis_on(as_of)) if as_of else []
        if not snapshots:
            raise NotFound("No KPI snapshots for that date.")
        data = {
            "as_of": as_of,
            "kpis": [
                {"kpi": s.kpi, "label": Kpi(s.kpi).label, "value": s.value} for s in snapshots
            ],
        }
        return Response(KpiDaySerializer(data).data)


class CohortCellSerializer(serializers.ModelSerializer):
    rate = serializers.FloatField(allow_null=True, read_only=True)

    class Meta:
        model = CohortRetention
        fields = ["as_of", "basis", "cohort", "period", "size", "retained", "rate", "projected"]


class CohortListView(generics.ListAPIView):
    """Cohort retention cells of a day's run: by enrollment month, first-purchase month or
    paid-plan start month (with the sBG model's projected share)."""

    serializer_class = CohortCellSerializer
    permission_classes = [HasPermission.of("analytics.view_cohortretention")]
    filter_backends: list = []

    @extend_schema(
        parameters=[
            AS_OF,
            OpenApiParameter("basis", enum=CohortBasis.values, description="Cohort basis"),
        ],
        summary="Cohort retention tables",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return CohortRetention.objects.none()
        query = CohortQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        as_of = query.validated_data.get("as_of") or selectors.latest_cohort_date()
        if as_of is None:
            return CohortRetention.objects.none()
        return selectors.cohort_cells(as_of=as_of, basis=query.validated_data.get("basis"))


class ModelFitSerializer(serializers.ModelSerializer):
    params = serializers.DictField(child=serializers.FloatField())

    class Meta:
        model = ModelFit
        fields = [
            "model",
            "scope",
            "params",
            "log_likelihood",
            "time_unit",
            "n_customers",
            "converged",
            "message",
            "as_of",
            "fitted_at",
        ]


class LatestModelFitsView(APIView):
    """The newest fit of each model: BG/NBD (per week), Gamma-Gamma and sBG (per month)."""

    permission_classes = [HasPermission.of("analytics.view_modelfit")]

    @extend_schema(
        responses={200: ModelFitSerializer(many=True)}, summary="Latest fit of each model"
    )
    def get(self, request):
        return Response(ModelFitSerializer(selectors.latest_model_fits(), many=True).data)


class MemberMetricsSerializer(serializers.ModelSerializer):
    T = serializers.IntegerField(
        source="tenure_days", read_only=True, help_text="Days from the first purchase to as_of"
    )

    class Meta:
        model = MemberMetrics
        fields = [
            "member",
            "as_of",
            "first_purchase_on",
            "last_purchase_on",
            "last_activity_at",
            "purchase_days",
            "frequency",
            "recency_days",
            "T",
            "monetary",
            "total_spend",
            "p_alive",
            "expected_purchases_90d",
            "expected_purchases_12m",
            "expected_order_value",
            "clv_12m",
            "clv_band",
            "churn_risk",
            "recency_score",
            "frequency_score",
            "monetary_score",
            "rfm_segment",
        ]


class MemberMetricsView(APIView):
    """A member's figures from the latest pipeline run (buy-till-you-die form: frequency =
    repeat purchase days; recency and T in days from the first purchase)."""

    permission_classes = [HasPermission.of("analytics.view_membermetrics")]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "member_id", int, OpenApiParameter.PATH, description="The member's id."
            )
        ],
        responses={200: MemberMetricsSerializer, 404: NO_DATA},
        summary="A member's RFM, CLV and churn figures",
    )
    def get(self, request, member_id):
        metrics = selectors.member_metrics(member_id)
        if metrics is None:
            raise NotFound("No metrics for this member (unknown, or not in a run yet).")
        return Response(MemberMetricsSerializer(metrics).data)


urlpatterns = [
    path("analytics/kpis/", KpiView.as_view(), name="analytics-kpis"),
    path("analytics/cohorts/", CohortListView.as_view(), name="analytics-cohorts"),
    path(
        "analytics/model-fits/latest/",
        LatestModelFitsView.as_view(),
        name="analytics-model-fits-latest",
    ),
    path("members/<int:member_id>/metrics/", MemberMetricsView.as_view(), name="member-metrics"),
]


def register(router) -> None:
    """This app has no viewsets; its routes are in `urlpatterns`."""
