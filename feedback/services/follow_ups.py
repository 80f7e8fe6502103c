"""Support works the follow-ups an unhappy score opened."""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..models import FollowUp, FollowUpStatus

logger = logging.getLogger(__name__)


class OutcomeRequired(ValueError):
    pass


def update_follow_up(
    *,
    follow_up: FollowUp,
    actor,
    status: str,
    assignee=None,
    notes: str = "",
    due_at: datetime | None = None,
    outcome: str = "",
    now: datetime | None = None,
) -> FollowUp:
    """Support works a follow-up; resolving needs an outcome and records who and when."""
    now = now or timezone.now()
    if status == FollowUpStatus.RESOLVED and not (outcome or "").strip():
        raise OutcomeRequired("Record the outcome to resolve the follow-up.")
    with transaction.atomic():
        row = FollowUp.objects.select_for_update().get(pk=follow_up.pk)
        if status == FollowUpStatus.RESOLVED and row.status != FollowUpStatus.RESOLVED:
            row.resolved_at, row.resolved_by = now, actor
        elif status != FollowUpStatus.RESOLVED:
            row.resolved_at, row.resolved_by = None, None
        row.status = status
        row.assignee = assignee
        row.notes = notes
        row.outcome = (outcome or "").strip()
        if due_at is not None:
            row.due_at = due_at
        row.save()
    logger.info("follow-up %s: %s by %s", row.pk, status, getattr(actor, "pk", None))
    return row
