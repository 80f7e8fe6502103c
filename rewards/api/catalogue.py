"""The rewards catalogue, redeeming rewards for a member, and cancelling a redemption."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from members.api_auth import HasPermission, StrictModelPermissions

from .. import services
from ..models import Redemption, Reward, RewardKind
from .common import (
    MEMBER_ID,
    NOT_FOUND,
    MemberScopedMixin,
    conflict,
    idempotency_key_field,
    merged,
    window_errors,
)
from .ledger import current_balance


class RewardSerializer(serializers.ModelSerializer):
    class Meta:
        model = Reward
        fields = [
            "id",
            "name",
            "description",
            "kind",
            "points_cost",
            "value",
            "stock",
            "per_member_limit",
            "min_tier",
            "active_from",
            "active_until",
            "is_active",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {
            "points_cost": {"min_value": 1},
            "value": {"min_value": 0},
            "per_member_limit": {"min_value": 1},
        }

    def validate(self, attrs):
        errors = window_errors(attrs, self.instance)
        if merged(attrs, self.instance, "kind") == RewardKind.MONEY_OFF:
            value = merged(attrs, self.instance, "value")
            if value is None or value <= 0:
                errors["value"] = ["Money-off rewards need an amount above 0."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class RewardViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """The catalogue: read with rewards.view_reward, add with rewards.add_reward."""

    queryset = Reward.objects.select_related("min_tier").order_by("points_cost", "name", "id")
    serializer_class = RewardSerializer
    permission_classes = [StrictModelPermissions]
    filterset_fields = ["kind", "is_active", "min_tier"]


class RedemptionSerializer(serializers.ModelSerializer):
    reward_name = serializers.CharField(source="reward.name", read_only=True)

    class Meta:
        model = Redemption
        fields = [
            "id",
            "member",
            "reward",
            "reward_name",
            "points",
            "code",
            "status",
            "created_at",
            "cancelled_at",
            "cancel_reason",
        ]
        read_only_fields = fields


class RedemptionResultSerializer(RedemptionSerializer):
    # A plain string here keeps one "RedemptionStatus" enum in the schema (see Redemption).
    status = serializers.CharField(read_only=True, help_text="completed or cancelled")
    balance = serializers.SerializerMethodField(help_text="The member's balance now.")

    class Meta(RedemptionSerializer.Meta):
        fields = [*RedemptionSerializer.Meta.fields, "balance"]
        read_only_fields = fields

    def get_balance(self, redemption) -> int:
        return current_balance(redemption.member)


class RedeemSerializer(serializers.Serializer):
    reward = serializers.PrimaryKeyRelatedField(queryset=Reward.objects.all())
    idempotency_key = idempotency_key_field()


class CancelRedemptionSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200)


REDEEM_CONFLICTS = conflict(
    "insufficient_points",
    "out_of_stock",
    "limit_reached",
    "tier_required",
    "reward_unavailable",
    "member_not_active",
)


@extend_schema(parameters=[MEMBER_ID])
class MemberRedemptionViewSet(MemberScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """A member's redemptions. Redeeming checks tier, window, limit, balance and stock together
    and changes nothing when one fails."""

    serializer_class = RedemptionSerializer

    def get_permissions(self):
        needed = "rewards.add_redemption" if self.action == "create" else "rewards.view_redemption"
        return [HasPermission.of(needed)()]

    def get_queryset(self):
        if self.is_schema_view():
            return Redemption.objects.none()
        return Redemption.objects.filter(member=self.get_member()).select_related("reward")

    @extend_schema(summary="A member's redemptions, newest first")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="Redeem a reward for the member (idempotent on idempotency_key)",
        request=RedeemSerializer,
        responses={
            201: RedemptionResultSerializer,
            200: OpenApiResponse(RedemptionResultSerializer, description="Key already used"),
            404: NOT_FOUND,
            409: REDEEM_CONFLICTS,
        },
    )
    def create(self, request, member_id):
        member = self.get_member()
        data = RedeemSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = f"api:{member.pk}:{data.validated_data['idempotency_key']}"
        repeat = Redemption.objects.filter(idempotency_key=key).exists()
        redemption = services.redeem_reward(
            member=member,
            reward=data.validated_data["reward"],
            idempotency_key=key,
            actor=request.user,
        )
        return Response(
            RedemptionResultSerializer(redemption).data,
            status=status.HTTP_200_OK if repeat else status.HTTP_201_CREATED,
        )


class RedemptionViewSet(viewsets.GenericViewSet):
    """Cancelling gives the points and the stock back; a handed-out code stays used."""

    queryset = Redemption.objects.select_related("reward", "member")
    serializer_class = RedemptionSerializer

    @extend_schema(
        summary="Cancel a redemption: the points and the stock go back",
        request=CancelRedemptionSerializer,
        responses={
            200: RedemptionResultSerializer,
            404: NOT_FOUND,
            409: conflict("already_cancelled"),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[HasPermission.of("rewards.change_redemption")],
    )
    def cancel(self, request, pk=None):
        redemption = self.get_object()
        data = CancelRedemptionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        redemption = services.cancel_redemption(
            redemption=redemption, actor=request.user, reason=data.validated_data["reason"]
        )
        return Response(RedemptionResultSerializer(redemption).data)
