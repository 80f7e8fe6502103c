from decimal import Decimal

import factory

from rewards.models import (
    EarningRule,
    EarningRuleKind,
    MembershipPlan,
    Reward,
    RewardKind,
    Tier,
)
from tests.members.factories import MemberFactory

__all__ = [
    "EarningRuleFactory",
    "MemberFactory",
    "MembershipPlanFactory",
    "RewardFactory",
    "TierFactory",
]


class TierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tier

    name = factory.Sequence(lambda n: f"Tier {n}")
    rank = factory.Sequence(lambda n: n + 1)
    points_threshold = 0
    earn_multiplier = Decimal("1.00")
    guaranteed_months = 12


class EarningRuleFactory(factory.django.DjangoModelFactory):
    """A purchase rule: one point per unit of money, unless told otherwise."""

    class Meta:
        model = EarningRule

    name = factory.Sequence(lambda n: f"Rule {n}")
    kind = EarningRuleKind.PURCHASE
    points_per_unit = Decimal("1")


class RewardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reward

    name = factory.Sequence(lambda n: f"Reward {n}")
    kind = RewardKind.FREE_PRODUCT
    points_cost = 100


class MembershipPlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MembershipPlan

    name = factory.Sequence(lambda n: f"Plan {n}")
    price = Decimal("4.99")
    currency = "EUR"
    billing_period_months = 1
    trial_days = 14
    earn_multiplier = Decimal("1.00")
    renewal_bonus_points = 0
