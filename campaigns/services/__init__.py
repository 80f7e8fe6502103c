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
from .audience import _add_chunk as _add_chunk
from .audience import _add_to_campaign as _add_to_campaign
from .audience import _classify as _classify
from .guard_rails import CAP_WINDOW, campaign_settings
from .guard_rails import _exclusion as _exclusion
from .guard_rails import _recent_sends as _recent_sends
from .lifecycle import _check_complete as _check_complete
from .lifecycle import _send_time as _send_time
from .lifecycle import _start_if_due as _start_if_due
from .lifecycle import cancel_campaign, launch_campaign, run_due_campaigns
from .offers import _award_bonus as _award_bonus
from .offers import _members_with_multiplier_offers as _members_with_multiplier_offers
from .offers import _multiplier_campaigns as _multiplier_campaigns
from .offers import multiplier_offers, record_offer_points
from .sending import _email as _email
from .sending import _enqueue as _enqueue
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
