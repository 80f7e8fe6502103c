"""Every write in the rewards app goes through these functions (see each module)."""

from .catalogue import (
    add_reward_codes,
    cancel_redemption,
    generate_reward_codes,
    redeem_reward,
)
from .engine import Award, AwardLine, EventInput, award_for_event, reverse_order, simulate_award
from .ledger import (
    adjust_points,
    award_points,
    check_ledger,
    expire_points,
    ledger_sum,
    release_pending,
    reverse_transaction,
    send_expiry_reminders,
    spend_points,
)
from .plans import (
    cancel_subscription,
    lapse_subscriptions,
    record_renewal,
    resume_subscription,
    subscribe,
)
from .referrals import qualify_referral_on_first_purchase, record_referral
from .tiers import refresh_tier, review_tiers, set_member_tier

__all__ = [
    "Award",
    "AwardLine",
    "EventInput",
    "add_reward_codes",
    "adjust_points",
    "award_for_event",
    "award_points",
    "cancel_redemption",
    "cancel_subscription",
    "check_ledger",
    "expire_points",
    "generate_reward_codes",
    "lapse_subscriptions",
    "ledger_sum",
    "qualify_referral_on_first_purchase",
    "record_referral",
    "record_renewal",
    "redeem_reward",
    "refresh_tier",
    "release_pending",
    "resume_subscription",
    "reverse_order",
    "reverse_transaction",
    "review_tiers",
    "send_expiry_reminders",
    "set_member_tier",
    "simulate_award",
    "spend_points",
    "subscribe",
]
