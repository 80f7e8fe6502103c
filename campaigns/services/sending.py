"""Sending: batches queued under the rate limit, each delivered under the guard rails (a points
offer stops once its budget is spent), and test messages."""

import logging
from datetime import datetime

from django.core import mail
from django.db import transaction
from django.utils import timezone

from members.models import Member

from .. import messages
from ..models import Campaign, CampaignSend, CampaignStatus, OfferKind, SendStatus
from .guard_rails import _exclusion, _recent_sends, campaign_settings
from .offers import _add_points_awarded, _award_bonus

logger = logging.getLogger(__name__)


def _enqueue(campaign_id: int, send_ids: list[int]) -> int:
    """Queue the sends in batches after commit, spaced to respect the rate limit."""
    if not send_ids:
        return 0
    from ..tasks import deliver_batch

    size = campaign_settings().batch_size
    chunks = [send_ids[i : i + size] for i in range(0, len(send_ids), size)]
    for chunk, countdown in zip(chunks, batch_countdowns(len(send_ids)), strict=True):
        transaction.on_commit(
            lambda chunk=chunk, countdown=countdown: deliver_batch.apply_async(
                args=[campaign_id, chunk], countdown=countdown
            )
        )
    return len(chunks)


def batch_countdowns(count: int) -> list[int]:
    """Seconds to wait before each batch of `count` sends, so that no more than the rate
    limit go out a minute whatever the number of workers."""
    settings_row = campaign_settings()
    size = settings_row.batch_size
    seconds_per_batch = size * 60 / settings_row.messages_per_minute
    return [round(number * seconds_per_batch) for number in range(-(-count // size))]


def deliver_batch(
    *, campaign_id: int, send_ids: list[int], now: datetime | None = None, mail_connection=None
) -> int:
    """Send one batch of queued messages; returns how many went out. Idempotent: only sends
    still queued are touched. The emails go out inside the transaction, so a mail server
    failure rolls the batch back for the task's retry (a partial failure can repeat a few)."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(of=("self",))
            .select_related("reward")
            .get(pk=campaign_id)
        )
        if campaign.status != CampaignStatus.RUNNING or now >= campaign.ends_at:
            return 0
        sends = list(
            CampaignSend.objects.select_for_update()
            .filter(pk__in=send_ids, campaign_id=campaign_id, status=SendStatus.PENDING)
            .order_by("member_id")
        )
        if not sends:
            return 0
        # Lock the members (in id order) so two campaigns cannot both pass the weekly cap.
        members = {
            m.pk: m
            for m in Member.objects.select_for_update()
            .filter(pk__in=[s.member_id for s in sends])
            .order_by("pk")
        }
        cap = campaign_settings().weekly_message_cap
        sent = _recent_sends(members, now)
        contexts = messages.member_contexts(list(members.values()), campaign, now=now)
        emails = []
        awarded = 0
        for send in sends:
            member = members[send.member_id]
            values = {
                "status": member.status,
                "email": member.email,
                "marketing_consent": member.marketing_consent,
            }
            excluded = _exclusion(values, sent[member.pk], cap)
            if excluded is None and campaign.has_points_offer:
                left = None if campaign.budget_left is None else campaign.budget_left - awarded
                needed = campaign.bonus_points if campaign.offer_kind == OfferKind.BONUS else 1
                if left is not None and left < needed:
                    excluded = SendStatus.BUDGET
            if excluded:
                send.status = excluded
                continue
            if campaign.offer_kind == OfferKind.BONUS:
                awarded += _award_bonus(campaign, member, now)
            rendered = messages.render_message(campaign, contexts[member.pk], member.pk)
            emails.append(_email(rendered, member.email))
            send.status, send.sent_at, send.subject = SendStatus.SENT, now, rendered.subject
            sent[member.pk] += 1
        CampaignSend.objects.bulk_update(sends, ["status", "sent_at", "subject"])
        if awarded:
            _add_points_awarded(campaign.pk, awarded)
        if emails:
            (mail_connection or mail.get_connection()).send_messages(emails)
    logger.info("campaign %s: sent %s of a batch of %s", campaign_id, len(emails), len(sends))
    return len(emails)


def _email(rendered: messages.Rendered, to: str) -> mail.EmailMessage:
    return mail.EmailMessage(
        subject=rendered.subject,
        body=rendered.text,
        to=[to],
        headers={
            "List-Unsubscribe": f"<{rendered.unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )


def send_test(*, campaign: Campaign, member: Member, to: str) -> messages.Rendered:
    """The message as `member` would get it, sent to a staff address; nothing is recorded."""
    rendered = messages.render_for_member(campaign, member)
    test = messages.Rendered(
        subject=f"[Test] {rendered.subject}",
        body=rendered.body,
        text=rendered.text,
        unsubscribe_url=rendered.unsubscribe_url,
    )
    _email(test, to).send()
    return test
