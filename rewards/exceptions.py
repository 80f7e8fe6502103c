"""Rewards domain errors; each has a stable code the API returns with a 409."""

from members.exceptions import DomainError


class InsufficientPoints(DomainError):
    """The member does not have enough points."""

    code = "insufficient_points"


class OutOfStock(DomainError):
    """This reward is out of stock."""

    code = "out_of_stock"


class LimitReached(DomainError):
    """The member has already redeemed this reward as often as allowed."""

    code = "limit_reached"


class TierRequired(DomainError):
    """This reward needs a higher tier."""

    code = "tier_required"


class RewardUnavailable(DomainError):
    """This reward is not available now."""

    code = "reward_unavailable"


class AlreadyCancelled(DomainError):
    """This redemption is already cancelled."""

    code = "already_cancelled"


class NotReversible(DomainError):
    """This transaction cannot be reversed."""

    code = "not_reversible"


class PlanUnavailable(DomainError):
    """This plan is not available."""

    code = "plan_unavailable"


class AlreadySubscribed(DomainError):
    """The member already has a live subscription."""

    code = "already_subscribed"


class SubscriptionNotLive(DomainError):
    """The subscription has ended."""

    code = "subscription_not_live"
