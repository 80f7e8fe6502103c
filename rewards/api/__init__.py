"""REST API of the rewards engine, under /api/v1/ (see loyalty_site/api_urls.py).

Member-scoped endpoints live under /members/{member_id}/; the marketer's configuration
(earning rules, tiers, rewards, plans) is plain model CRUD behind model permissions; actions
(adjust, redeem, cancel, subscribe, renew) need the matching add_/change_ permission and call
one rewards.services function each.
"""

from django.urls import path

from .catalogue import MemberRedemptionViewSet, RedemptionViewSet, RewardViewSet
from .ledger import MemberAdjustmentViewSet, MemberBalanceView, MemberTransactionViewSet
from .plans import MembershipPlanViewSet, MemberSubscriptionViewSet, SubscriptionViewSet
from .program import EarningRuleViewSet, TierViewSet

MEMBER = r"members/(?P<member_id>[0-9]+)"


def register(router) -> None:
    """Add the rewards viewsets to the project's API router."""
    router.register(f"{MEMBER}/transactions", MemberTransactionViewSet, "member-transaction")
    router.register(f"{MEMBER}/adjustments", MemberAdjustmentViewSet, "member-adjustment")
    router.register(f"{MEMBER}/redemptions", MemberRedemptionViewSet, "member-redemption")
    router.register(f"{MEMBER}/subscriptions", MemberSubscriptionViewSet, "member-subscription")
    router.register("rewards", RewardViewSet, "reward")
    router.register("redemptions", RedemptionViewSet, "redemption")
    router.register("earning-rules", EarningRuleViewSet, "earning-rule")
    router.register("tiers", TierViewSet, "tier")
    router.register("plans", MembershipPlanViewSet, "plan")
    router.register("subscriptions", SubscriptionViewSet, "subscription")


# Routes that are not viewsets.
urlpatterns = [
    path("members/<int:member_id>/balance/", MemberBalanceView.as_view(), name="member-balance"),
]

__all__ = ["register", "urlpatterns"]
