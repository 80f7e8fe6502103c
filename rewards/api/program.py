"""The marketer's program configuration: earning rules and tiers (model permissions)."""

from rest_framework import serializers, viewsets

from members.api_auth import StrictModelPermissions

from ..models import EarningRule, Tier, TierBasis
from ..selectors import program_settings
from ..validation import KIND_SPECIFIC, NEUTRAL, earning_rule_errors, threshold_problems
from .common import merged, window_errors


class EarningRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = EarningRule
        fields = [
            "id",
            "name",
            "kind",
            "is_active",
            "event_type",
            "points_per_unit",
            "min_amount",
            "points",
            "factor",
            "channel",
            "touchpoint",
            "product_category",
            "sku",
            "tier",
            "plan",
            "active_from",
            "active_until",
            "priority",
            "stackable",
            "max_count_per_day",
            "max_points_per_day",
            "max_count_per_week",
            "max_points_per_week",
            "max_count_per_month",
            "max_points_per_month",
            "max_count_lifetime",
            "max_points_lifetime",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"min_amount": {"min_value": 0}}

    def validate(self, attrs):
        errors = window_errors(attrs, self.instance)
        kind = merged(attrs, self.instance, "kind")

        def value(name):
            return merged(attrs, self.instance, name, NEUTRAL.get(name))

        names = {"event_type", *KIND_SPECIFIC}
        for name, message in earning_rule_errors(kind, {n: value(n) for n in names}).items():
            errors.setdefault(name, [message])
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class EarningRuleViewSet(viewsets.ModelViewSet):
    queryset = EarningRule.objects.select_related("tier", "plan").order_by(
        "kind", "-priority", "id"
    )
    serializer_class = EarningRuleSerializer
    permission_classes = [StrictModelPermissions]
    filterset_fields = ["kind", "is_active", "event_type"]


class TierSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tier
        fields = [
            "id",
            "name",
            "rank",
            "points_threshold",
            "spend_threshold",
            "earn_multiplier",
            "guaranteed_months",
            "perks",
        ]
        read_only_fields = ["id"]
        extra_kwargs = {
            "spend_threshold": {"min_value": 0},
            "earn_multiplier": {"min_value": 1},
        }

    def validate(self, attrs):
        """Thresholds rise strictly with rank, on the basis the program measures tiers by."""
        basis = program_settings().tier_basis
        field = "spend_threshold" if basis == TierBasis.SPEND else "points_threshold"
        candidate = Tier(
            name=merged(attrs, self.instance, "name"),
            rank=merged(attrs, self.instance, "rank"),
            points_threshold=merged(attrs, self.instance, "points_threshold", 0),
            spend_threshold=merged(attrs, self.instance, "spend_threshold", 0),
        )
        others = list(Tier.objects.exclude(pk=self.instance.pk if self.instance else None))
        problems = threshold_problems([*others, candidate], basis, involving=candidate)
        if problems:
            raise serializers.ValidationError({field: problems})
        return attrs


class TierViewSet(viewsets.ModelViewSet):
    queryset = Tier.objects.order_by("rank")
    serializer_class = TierSerializer
    permission_classes = [StrictModelPermissions]
