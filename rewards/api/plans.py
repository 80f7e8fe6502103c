"""Paid membership plans (model permissions), a member's subscriptions, renewals and
cancellation."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from members.api_auth import HasPermission, StrictModelPermissions

from .. import services
from ..models import MembershipPlan, Subscription, SubscriptionPayment
from .common import MEMBER_ID, NOT_FOUND, MemberScopedMixin, ProtectedDestroyMixin, conflict

# A billing period longer than this is a typo, and would run the calendar off its end.
MAX_BILLING_PERIOD_MONTHS = 120
# A payment recorded "in the future" beyond ordinary clock skew is a mistake.
CLOCK_SKEW = timedelta(minutes=5)


class MembershipPlanSerializer(serializers.ModelSerializer):
    currency = serializers.RegexField(
        r"^[A-Z]{3}$", required=False, help_text="ISO 4217 code, e.g. EUR."
    )

    class Meta:
        model = MembershipPlan
        fields = [
            "id",
            "name",
            "description",
            "price",
            "currency",
            "billing_period_months",
            "trial_days",
            "earn_multiplier",
            "renewal_bonus_points",
            "granted_tier",
            "is_active",
        ]
        read_only_fields = ["id"]
        extra_kwargs = {
            "price": {"min_value": Decimal("0.01")},
            "earn_multiplier": {"min_value": 1},
            "billing_period_months": {"max_value": MAX_BILLING_PERIOD_MONTHS},
            "trial_days": {"max_value": 366},
        }


class MembershipPlanViewSet(ProtectedDestroyMixin, viewsets.ModelViewSet):
    """Plans; a plan with subscriptions cannot be deleted (409 `in_use`): deactivate it."""

    queryset = MembershipPlan.objects.select_related("granted_tier").order_by("price", "name", "id")
    serializer_class = MembershipPlanSerializer
    permission_classes = [StrictModelPermissions]
    filterset_fields = ["is_active"]


class SubscriptionSerializer(serializers.ModelSerializer):
    plan_name = serializers.CharField(source="plan.name", read_only=True)

    class Meta:
        model = Subscription
        fields = [
            "id",
            "member",
            "plan",
            "plan_name",
            "status",
            "current_period_start",
            "current_period_end",
            "cancel_at_period_end",
            "started_at",
            "ended_at",
        ]
        read_only_fields = fields


class SubscribeSerializer(serializers.Serializer):
    plan = serializers.PrimaryKeyRelatedField(queryset=MembershipPlan.objects.all())


class RenewalSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=Decimal("0.01"))
    paid_at = serializers.DateTimeField(required=False, help_text="Defaults to now.")
    payment_ref = serializers.CharField(
        max_length=100, help_text="The payment provider's reference; unique per payment."
    )

    def validate_paid_at(self, value):
        if value > timezone.now() + CLOCK_SKEW:
            raise serializers.ValidationError("A payment cannot be in the future.")
        subscription = self.context["subscription"]
        if value < subscription.started_at:
            raise serializers.ValidationError("The payment is before the subscription started.")
        return value

    def validate_payment_ref(self, value):
        subscription = self.context["subscription"]
        other = (
            SubscriptionPayment.objects.filter(payment_ref=value)
            .exclude(subscription=subscription)
            .exists()
        )
        if other:
            raise serializers.ValidationError(
                "This payment was already recorded for another subscription."
            )
        return value


class PaymentSerializer(serializers.ModelSerializer):
    bonus_points = serializers.IntegerField(
        source="bonus_transaction.points", read_only=True, allow_null=True, default=None
    )
    subscription = SubscriptionSerializer(read_only=True)

    class Meta:
        model = SubscriptionPayment
        fields = [
            "id",
            "subscription",
            "amount",
            "currency",
            "paid_at",
            "payment_ref",
            "period_start",
            "period_end",
            "bonus_points",
        ]
        read_only_fields = fields


class CancelSubscriptionSerializer(serializers.Serializer):
    at_period_end = serializers.BooleanField(
        default=True, help_text="False ends the subscription now."
    )


@extend_schema(parameters=[MEMBER_ID])
class MemberSubscriptionViewSet(MemberScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """A member's paid-plan subscriptions; at most one is live at a time."""

    serializer_class = SubscriptionSerializer

    def get_permissions(self):
        needed = (
            "rewards.add_subscription" if self.action == "create" else "rewards.view_subscription"
        )
        return [HasPermission.of(needed)()]

    def get_queryset(self):
        if self.is_schema_view():
            return Subscription.objects.none()
        return Subscription.objects.filter(member=self.get_member()).select_related("plan")

    @extend_schema(summary="A member's subscriptions, newest first")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="Subscribe the member to a plan (a trial when the plan has trial days)",
        request=SubscribeSerializer,
        responses={
            201: SubscriptionSerializer,
            404: NOT_FOUND,
            409: conflict("already_subscribed", "plan_unavailable", "member_not_active"),
        },
    )
    def create(self, request, member_id):
        member = self.get_member()
        data = SubscribeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subscription = services.subscribe(member=member, plan=data.validated_data["plan"])
        return Response(SubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)


class SubscriptionViewSet(viewsets.GenericViewSet):
    """Payments extend a subscription by one billing period; cancelling ends it now or at the
    end of the paid period."""

    queryset = Subscription.objects.select_related("plan", "member")
    serializer_class = SubscriptionSerializer

    @extend_schema(
        summary="Record a paid period (idempotent on payment_ref)",
        request=RenewalSerializer,
        responses={
            201: PaymentSerializer,
            200: OpenApiResponse(PaymentSerializer, description="payment_ref already recorded"),
            404: NOT_FOUND,
            409: conflict("subscription_not_live"),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[HasPermission.of("rewards.add_subscriptionpayment")],
    )
    def renewals(self, request, pk=None):
        subscription = self.get_object()
        data = RenewalSerializer(data=request.data, context={"subscription": subscription})
        data.is_valid(raise_exception=True)
        payment_ref = data.validated_data["payment_ref"]
        repeat = SubscriptionPayment.objects.filter(payment_ref=payment_ref).exists()
        payment = services.record_renewal(
            subscription=subscription,
            amount=data.validated_data["amount"],
            paid_at=data.validated_data.get("paid_at") or timezone.now(),
            payment_ref=payment_ref,
        )
        payment = SubscriptionPayment.objects.select_related(
            "subscription__plan", "bonus_transaction"
        ).get(pk=payment.pk)
        return Response(
            PaymentSerializer(payment).data,
            status=status.HTTP_200_OK if repeat else status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary="Cancel at the end of the paid period (default) or now",
        request=CancelSubscriptionSerializer,
        responses={
            200: SubscriptionSerializer,
            404: NOT_FOUND,
            409: conflict("subscription_not_live"),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[HasPermission.of("rewards.change_subscription")],
    )
    def cancel(self, request, pk=None):
        subscription = self.get_object()
        data = CancelSubscriptionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subscription = services.cancel_subscription(
            subscription=subscription, at_period_end=data.validated_data["at_period_end"]
        )
        return Response(SubscriptionSerializer(subscription).data)
