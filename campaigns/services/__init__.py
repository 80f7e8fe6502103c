"""Every write of the campaigns app: launching, choosing the audience and its holdout, sending
in batches under the guard rails, triggers, the offers' points, unsubscribing.

Guard rails, checked when the audience is chosen and again, under a lock on the members, when
each batch is sent: an active member with an email and marketing consent; no more than the
weekly cap of campaign messages in any 7 days across all campaigns; at most once per campaign
(a unique constraint); a points offer stops once its budget is spent.

guard_rails  the settings row, the weekly cap and who may get a message at all
audience     the segment's members, the stable treatment/control split, adding to a campaign
lifecycle    launching, starting when due, cancelling, the scheduler's tick
triggers     always-on campaigns: members entering the trigger stage or the segment
sending      queuing batches under the rate limit, delivering them, test messages
offers       the bonus and the multiplier offers (rewards.registry provider and listener)
unsubscribe  withdrawing consent from a link in a message
"""

from .audience import (
    ADD_CHUNK,
    HASH_SPACE,
    AudienceCount,
    audience_member_ids,
    count_audience,
    group_for,
    in_control_group,
)
from .audience import _add_to_campaign as _add_to_campaign
from .guard_rails import CAP_WINDOW, campaign_settings
from .lifecycle import cancel_campaign, launch_campaign, run_due_campaigns
from .offers import multiplier_offers, record_offer_points
from .sending import batch_countdowns, deliver_batch, send_test
from .triggers import TRIGGER_LOOKBACK, run_triggers
from .unsubscribe import member_for_unsubscribe, unsubscribe

__all__ = [
    "ADD_CHUNK",
    "CAP_WINDOW",
    "HASH_SPACE",
    "TRIGGER_LOOKBACK",
    "AudienceCount",
    "audience_member_ids",
    "batch_countdowns",
    "campaign_settings",
    "cancel_campaign",
    "count_audience",
    "deliver_batch",
    "group_for",
    "in_control_group",
    "launch_campaign",
    "member_for_unsubscribe",
    "multiplier_offers",
    "record_offer_points",
    "run_due_campaigns",
    "run_triggers",
    "send_test",
    "unsubscribe",
]
