"""Celery tasks for campaigns: thin, idempotent wrappers that take ids and call services."""

import logging

from celery import shared_task

from . import services

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def deliver_batch(campaign_id: int, send_ids: list[int]) -> int:
    """Send one batch; sends already out are skipped, so a retry or a repeat is harmless."""
    return services.deliver_batch(campaign_id=campaign_id, send_ids=send_ids)


@shared_task(acks_late=True)
def run_due_campaigns() -> dict:
    """Every few minutes (beat): start due campaigns, run always-on triggers, close ended."""
    result = services.run_due_campaigns()
    logger.info("campaigns tick: %s", result)
    return result
