"""A member's points: balance and tier progress, the ledger, and support adjustments."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from members.api_auth import HasPermission

from .. import selectors, services
from ..models import PointsAccount, PointsTransaction
from .common import (
    MAX_ADJUSTMENT,
    MEMBER_ID,
    NOT_FOUND,
    MemberScopedMixin,
    conflict,
    idempotency_key_field,
)


class ExpiringPointsSerializer(serializers.Serializer):
    date = serializers.DateField(help_text="Local date in the program's timezone.")
    points = serializers.IntegerField()


class BalanceSerializer(serializers.Serializer):
    balance = serializers.IntegerField()
    pending = serializers.IntegerField()
    lifetime_earned = serializers.IntegerField()
    points_name = serializers.CharField()
    tier = serializers.CharField(allow_null=True)
    next_tier = serializers.CharField(allow_null=True)
    points_to_next_tier = serializers.IntegerField(
        allow_null=True, help_text="Set when tiers are measured on points."
    )
    spend_to_next_tier = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        allow_null=True,
        help_text="Set when tiers are measured on spend.",
    )
    progress_percent = serializers.IntegerField()
    expiring = ExpiringPointsSerializer(many=True, help_text="Points expiring in the next 90 days.")


class TransactionSerializer(serializers.ModelSerializer):
    class Meta:
        model = PointsTransaction
        fields = [
            "id",
            "kind",
            "points",
            "pending_points",
            "balance_after",
            "reason",
            "source",
            "source_ref",
            "occurred_at",
            "created_at",
        ]
        read_only_fields = fields


class AdjustmentSerializer(serializers.Serializer):
    points = serializers.IntegerField(
        min_value=-MAX_ADJUSTMENT,
        max_value=MAX_ADJUSTMENT,
        help_text="Positive adds points, negative takes them away; never 0.",
    )
    reason = serializers.CharField(max_length=255)
    idempotency_key = idempotency_key_field()

    def validate_points(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError("Give a number of points other than 0.")
        return value


class AdjustmentResultSerializer(serializers.Serializer):
    transaction = TransactionSerializer()
    balance = serializers.IntegerField(help_text="The member's balance now.")


def current_balance(member) -> int:
    return (
        PointsAccount.objects.filter(member_id=member.pk).values_list("balance", flat=True).first()
        or 0
    )


class MemberBalanceView(MemberScopedMixin, APIView):
    """What a member has now: balance, pending points, tier progress and soon-expiring points."""

    permission_classes = [HasPermission.of("rewards.view_pointsaccount")]

    @extend_schema(
        parameters=[MEMBER_ID],
        responses={200: BalanceSerializer, 404: NOT_FOUND},
        summary="A member's balance, tier progress and points expiring soon",
    )
    def get(self, request, member_id):
        summary = selectors.member_balance(self.get_member())
        data = {
            "balance": summary.balance,
            "pending": summary.pending,
            "lifetime_earned": summary.lifetime_earned,
            "points_name": summary.points_name,
            "tier": summary.tier.name if summary.tier else None,
            "next_tier": summary.next_tier.name if summary.next_tier else None,
            "points_to_next_tier": summary.points_to_next_tier,
            "spend_to_next_tier": summary.spend_to_next_tier,
            "progress_percent": summary.progress_percent,
            "expiring": [{"date": day, "points": points} for day, points in summary.expiring],
        }
        return Response(BalanceSerializer(data).data)


@extend_schema(parameters=[MEMBER_ID])
class MemberTransactionViewSet(MemberScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """A member's points ledger: one row per change of balance or pending points."""

    serializer_class = TransactionSerializer
    permission_classes = [HasPermission.of("rewards.view_pointstransaction")]
    filterset_fields = ["kind"]

    def get_queryset(self):
        if self.is_schema_view():
            return PointsTransaction.objects.none()
        return selectors.member_transactions(self.get_member())

    @extend_schema(summary="A member's points ledger, newest first")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


@extend_schema(parameters=[MEMBER_ID])
class MemberAdjustmentViewSet(MemberScopedMixin, viewsets.GenericViewSet):
    """Support corrections, recorded on the ledger with the key's user as actor."""

    serializer_class = AdjustmentSerializer
    permission_classes = [HasPermission.of("rewards.add_pointstransaction")]

    @extend_schema(
        summary="Add or take away points with a reason (idempotent on idempotency_key)",
        request=AdjustmentSerializer,
        responses={
            201: AdjustmentResultSerializer,
            200: OpenApiResponse(AdjustmentResultSerializer, description="Key already used"),
            404: NOT_FOUND,
            409: conflict("insufficient_points"),
        },
    )
    def create(self, request, member_id):
        member = self.get_member()
        data = AdjustmentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = f"api-adjust:{member.pk}:{data.validated_data['idempotency_key']}"
        repeat = PointsTransaction.objects.filter(idempotency_key=key).exists()
        txn = services.adjust_points(
            member=member,
            points=data.validated_data["points"],
            reason=data.validated_data["reason"],
            actor=request.user,
            idempotency_key=key,
        )
        result = {"transaction": txn, "balance": current_balance(member)}
        return Response(
            AdjustmentResultSerializer(result).data,
            status=status.HTTP_200_OK if repeat else status.HTTP_201_CREATED,
        )
