"""Every write in the feedback app: planning and sending invitations, taking answers (points,
follow-ups, the survey_completed event) and working follow-ups.

invitations  planning invitations from journey events and sending the due ones
answers      checking a member's answers against the survey's questions
responses    taking a response: points, a follow-up for an unhappy score, the journey event
follow_ups   support working a follow-up
"""

from .answers import MAX_TEXT_LENGTH, CleanAnswer, validate_answers
from .follow_ups import OutcomeRequired, update_follow_up
from .invitations import (
    FIRST_RUN_LOOKBACK,
    MOMENTS,
    SEND_BATCH,
    SETTLE,
    STALE_AFTER,
    describe_moment,
    invitation_url,
    new_token,
    plan_invitations,
    run_invitations,
    send_due_invitations,
)
from .responses import (
    DETRACTOR_NPS,
    FOLLOW_UP_DAYS,
    UNHAPPY_CSAT,
    Submitted,
    submit_response,
)

__all__ = [
    "DETRACTOR_NPS",
    "FIRST_RUN_LOOKBACK",
    "FOLLOW_UP_DAYS",
    "MAX_TEXT_LENGTH",
    "MOMENTS",
    "SEND_BATCH",
    "SETTLE",
    "STALE_AFTER",
    "UNHAPPY_CSAT",
    "CleanAnswer",
    "OutcomeRequired",
    "Submitted",
    "describe_moment",
    "invitation_url",
    "new_token",
    "plan_invitations",
    "run_invitations",
    "send_due_invitations",
    "submit_response",
    "update_follow_up",
    "validate_answers",
]
