"""Every write in the feedback app: planning and sending invitations, taking answers (points,
follow-ups, the survey_completed event) and working follow-ups.

invitations  planning invitations from journey events and sending the due ones
answers      checking a member's answers against the survey's questions
responses    taking a response: points, a follow-up for an unhappy score, the journey event
follow_ups   support working a follow-up
"""

from .answers import MAX_TEXT_LENGTH, validate_answers
from .follow_ups import OutcomeRequired, update_follow_up
from .invitations import (
    TRIGGER_FIELDS,
    describe_moment,
    events_with_stage,
    invitation_for,
    new_token,
    plan_invitations,
    run_invitations,
    send_due_invitations,
)
from .responses import (
    FOLLOW_UP_DAYS,
    Submitted,
    points_key,
    submit_response,
    unhappy_reason,
)

__all__ = [
    "FOLLOW_UP_DAYS",
    "MAX_TEXT_LENGTH",
    "TRIGGER_FIELDS",
    "OutcomeRequired",
    "Submitted",
    "describe_moment",
    "events_with_stage",
    "invitation_for",
    "new_token",
    "plan_invitations",
    "points_key",
    "run_invitations",
    "send_due_invitations",
    "submit_response",
    "unhappy_reason",
    "update_follow_up",
    "validate_answers",
]
