"""Periodic journey jobs: thin wrappers over the services, safe to run twice.

Each takes an optional ISO date or datetime (`as_of`); a bare date means the end of that day
in the program's timezone.
"""

import logging

from celery import shared_task

from rewards.selectors import program_settings
from rewards.services import clock

from . import services

logger = logging.getLogger(__name__)

TASK_OPTIONS = {"acks_late": True, "ignore_result": True}


def _as_of(value: str | None):
    return clock.parse_as_of(value, clock.program_zone(program_settings()))


@shared_task(**TASK_OPTIONS)
def evaluate_stages(as_of: str | None = None) -> int:
    moved = services.evaluate_stages(as_of=_as_of(as_of))
    logger.info("evaluate_stages: %s transitions", moved)
    return moved


@shared_task(**TASK_OPTIONS)
def detect_abandoned_carts(as_of: str | None = None) -> int:
    created = services.detect_abandoned_carts(as_of=_as_of(as_of))
    logger.info("detect_abandoned_carts: %s cart_abandon events", created)
    return created
