"""Nightly rewards jobs: thin wrappers over the services, safe to run twice.

Each takes an optional ISO date or datetime (`as_of`); a bare date means the end of that day.
"""

import logging
from datetime import datetime

from celery import shared_task

from . import services
from .selectors import program_settings
from .services import clock

logger = logging.getLogger(__name__)


def parse_as_of(value: str | None) -> datetime:
    return clock.parse_as_of(value, clock.program_zone(program_settings()))


TASK_OPTIONS = {"acks_late": True, "ignore_result": True}


@shared_task(**TASK_OPTIONS)
def release_pending_points(as_of: str | None = None) -> int:
    released = services.release_pending(as_of=parse_as_of(as_of))
    logger.info("release_pending_points: %s buckets", released)
    return released


@shared_task(**TASK_OPTIONS)
def expire_points(as_of: str | None = None) -> int:
    expired = services.expire_points(as_of=parse_as_of(as_of))
    logger.info("expire_points: %s points", expired)
    return expired


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5, **TASK_OPTIONS)
def send_expiry_reminders(as_of: str | None = None) -> int:
    sent = services.send_expiry_reminders(as_of=parse_as_of(as_of))
    logger.info("send_expiry_reminders: %s emails", sent)
    return sent


@shared_task(**TASK_OPTIONS)
def review_tiers(as_of: str | None = None) -> dict:
    counts = services.review_tiers(as_of=parse_as_of(as_of))
    logger.info("review_tiers: %s", counts)
    return counts


@shared_task(**TASK_OPTIONS)
def lapse_subscriptions(as_of: str | None = None) -> dict:
    counts = services.lapse_subscriptions(as_of=parse_as_of(as_of))
    logger.info("lapse_subscriptions: %s", counts)
    return counts
