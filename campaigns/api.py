"""REST API of the campaigns app: campaigns (read) and their results.

`GET /api/v1/campaigns/` and `/api/v1/campaigns/{id}/` need `campaigns.view_campaign`
(Analyst and Marketer roles); `GET /api/v1/campaigns/{id}/results/` answers treatment against
control with the uplift's 95% interval, points cost, incremental revenue and ROI.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from members.api_auth import StrictModelPermissions

from . import selectors
from .models import Campaign

urlpatterns: list = []


class CampaignSerializer(serializers.ModelSerializer):
    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "description",
            "status",
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
            "multiplier",
            "bonus_points",
            "reward",
            "points_budget",
            "points_awarded",
            "conversion_days",
            "launched_at",
        ]
        read_only_fields = fields


class GroupResultSerializer(serializers.Serializer):
    members = serializers.IntegerField()
    conversions = serializers.IntegerField()
    conversion_rate = serializers.FloatField(allow_null=True)
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2)
    revenue_per_member = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)


class UpliftSerializer(serializers.Serializer):
    difference = serializers.FloatField(allow_null=True, help_text="Treatment − control rate")
    ci95_low = serializers.FloatField(allow_null=True)
    ci95_high = serializers.FloatField(allow_null=True)
    method = serializers.CharField(help_text="newcombe_hybrid_score (Newcombe 1998, method 10)")
    wald_ci95_low = serializers.FloatField(allow_null=True)
    wald_ci95_high = serializers.FloatField(allow_null=True)
    significant = serializers.BooleanField(help_text="The 95% interval excludes zero")


class CampaignResultsSerializer(serializers.Serializer):
    campaign = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    conversion_days = serializers.IntegerField()
    currency = serializers.CharField()
    treatment = GroupResultSerializer()
    control = GroupResultSerializer()
    excluded = serializers.IntegerField()
    uplift = UpliftSerializer()
    points_cost = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=16, decimal_places=2)
    incremental_revenue = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)
    roi = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)


class CampaignViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Campaign.objects.order_by("-starts_at", "-id")
    serializer_class = CampaignSerializer
    permission_classes = [StrictModelPermissions]
    filterset_fields = ["status", "schedule", "offer_kind"]

    @extend_schema(
        summary="A campaign's results: treatment against control",
        responses=CampaignResultsSerializer,
    )
    @action(detail=True, methods=["get"])
    def results(self, request, pk=None):
        campaign = self.get_object()
        return Response(selectors.results_for(campaign).as_dict())


def register(router) -> None:
    """Add this app's viewsets to the project's API router."""
    router.register("campaigns", CampaignViewSet, basename="campaign")
