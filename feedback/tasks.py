"""Periodic feedback job: thin wrapper over the services, safe to run twice (the cursor and
the one-invitation-per-event constraint make a repeat add nothing)."""

import logging

from celery import shared_task

from rewards.selectors import program_settings
from rewards.services import clock

from . import services

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def send_survey_invitations(as_of: str | None = None) -> dict:
    """`as_of`: an optional ISO datetime to run as of (default: now)."""
    now = clock.parse_as_of(as_of, clock.program_zone(program_settings())) if as_of else None
    counts = services.run_invitations(now=now)
    logger.info("send_survey_invitations: %s", counts)
    return counts
