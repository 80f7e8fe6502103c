"""Every write of the campaigns app: launching, choosing the audience and its holdout, sending
in batches under the guard rails, triggers, the offers' points, unsubscribing.

Guard rails, checked when the audience is chosen and again, under a lock on the members, when
each batch is sent: an active member with an email and marketing consent; no more than the
weekly cap of campaign messages in any 7 days across all campaigns; at most once per campaign
(a unique constraint); a points offer stops once its budget is spent.
"""

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.core import mail, signing
from django.db import connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from analytics.models import SegmentMembership
from journeys.models import StageTransition
from members.models import Member, MemberStatus
from members.services import set_consent
from rewards.registry import ExtraMultiplier
from rewards.services import award_points

from . import messages
from .exceptions import CampaignEnded, CampaignIncomplete, CampaignNotDraft, InvalidUnsubscribeLink
from .models import (
    Campaign,
    CampaignSend,
    CampaignSettings,
    CampaignStatus,
    Group,
    OfferAward,
    OfferKind,
    Schedule,
    SendStatus,
)

logger = logging.getLogger(__name__)

CAP_WINDOW = timedelta(days=7)
# Triggers re-read this far behind their cursor, so a late-committed stage move or a backdated
# event is not missed; members already in the campaign are skipped (at most once each).
TRIGGER_LOOKBACK = timedelta(days=1)
HASH_SPACE = 2**64
ADD_CHUNK = 5000  # members classified and inserted per statement group


def campaign_settings() -> CampaignSettings:
    row, _ = CampaignSettings.objects.get_or_create(pk=CampaignSettings.SINGLETON_ID)
    return row


# -- audience --------------------------------------------------------------------------------


def in_control_group(campaign_id: int, member_id: int, share: Decimal) -> bool:
    """Random but stable: the same member is always in the same group of a campaign. The first
    64 bits of SHA-256("campaign:<id>:member:<id>") as a uniform number in [0, 1)."""
    digest = hashlib.sha256(f"campaign:{campaign_id}:member:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < int(Decimal(share) * HASH_SPACE)


def group_for(campaign: Campaign, member_id: int) -> str:
    control = in_control_group(campaign.pk, member_id, campaign.control_share)
    return Group.CONTROL if control else Group.TREATMENT


def _recent_sends(member_ids: Iterable[int], now: datetime) -> Counter:
    rows = (
        CampaignSend.objects.filter(
            member_id__in=list(member_ids),
            status=SendStatus.SENT,
            sent_at__gt=now - CAP_WINDOW,
            sent_at__lte=now,
        )
        .values("member_id")
        .annotate(n=Count("id"))
        .values_list("member_id", "n")
    )
    return Counter(dict(rows))


def _exclusion(member: dict, sent: int, cap: int) -> str | None:
    if member["status"] != MemberStatus.ACTIVE or not member["email"]:
        return SendStatus.NO_ADDRESS
    if not member["marketing_consent"]:
        return SendStatus.NO_CONSENT
    if sent >= cap:
        return SendStatus.CAPPED
    return None


def _classify(campaign: Campaign, member_ids: list[int], now: datetime) -> dict[int, str]:
    """member id -> status the member would get now: pending, held out or an exclusion."""
    cap = campaign_settings().weekly_message_cap
    members = Member.objects.filter(pk__in=member_ids).values(
        "pk", "status", "email", "marketing_consent"
    )
    sent = _recent_sends(member_ids, now)
    out = {}
    for member in members:
        excluded = _exclusion(member, sent[member["pk"]], cap)
        if excluded:
            out[member["pk"]] = excluded
        elif group_for(campaign, member["pk"]) == Group.CONTROL:
            out[member["pk"]] = SendStatus.HELD_OUT
        else:
            out[member["pk"]] = SendStatus.PENDING
    return out


@dataclass(frozen=True)
class AudienceCount:
    segment_members: int
    treatment: int
    control: int
    no_consent: int
    capped: int
    no_address: int
    already_in_campaign: int

    @property
    def excluded(self) -> int:
        return self.no_consent + self.capped + self.no_address


def audience_member_ids(campaign: Campaign) -> list[int]:
    if campaign.segment_id is None:
        return []
    return list(
        SegmentMembership.objects.filter(segment_id=campaign.segment_id).values_list(
            "member_id", flat=True
        )
    )


def count_audience(campaign: Campaign, *, now: datetime | None = None) -> AudienceCount:
    """Who a launch now would reach: treatment, control and the exclusions, from the segment's
    last refresh. Always-on campaigns: the segment's current members, for scale."""
    now = now or timezone.now()
    ids = audience_member_ids(campaign)
    already = set(
        CampaignSend.objects.filter(campaign=campaign, member_id__in=ids).values_list(
            "member_id", flat=True
        )
    )
    new_ids = sorted(i for i in ids if i not in already)
    counts: Counter = Counter()
    for start in range(0, len(new_ids), ADD_CHUNK):
        counts.update(_classify(campaign, new_ids[start : start + ADD_CHUNK], now).values())
    return AudienceCount(
        segment_members=len(ids),
        treatment=counts[SendStatus.PENDING],
        control=counts[SendStatus.HELD_OUT],
        no_consent=counts[SendStatus.NO_CONSENT],
        capped=counts[SendStatus.CAPPED],
        no_address=counts[SendStatus.NO_ADDRESS],
        already_in_campaign=len(already),
    )


def _add_to_campaign(
    campaign: Campaign, member_ids: Iterable[int], *, trigger: str, now: datetime
) -> list[int]:
    """Record each new member with group and status, a chunk of members at a time; returns
    the new pending sends' ids."""
    member_ids = sorted(set(member_ids))
    pending: list[int] = []
    for start in range(0, len(member_ids), ADD_CHUNK):
        pending += _add_chunk(campaign, member_ids[start : start + ADD_CHUNK], trigger, now)
    return pending


def _add_chunk(campaign: Campaign, member_ids: list[int], trigger: str, now: datetime) -> list[int]:
    known = set(
        CampaignSend.objects.filter(campaign=campaign, member_id__in=member_ids).values_list(
            "member_id", flat=True
        )
    )
    new_ids = [pk for pk in member_ids if pk not in known]
    statuses = _classify(campaign, new_ids, now)
    CampaignSend.objects.bulk_create(
        [
            CampaignSend(
                campaign=campaign,
                member_id=pk,
                group=group_for(campaign, pk),
                status=status,
                trigger=trigger,
                assigned_at=now,
            )
            for pk, status in statuses.items()
        ],
        batch_size=2000,
        ignore_conflicts=True,  # a concurrent run added the member first: at most once
    )
    return list(
        CampaignSend.objects.filter(
            campaign=campaign, member_id__in=new_ids, status=SendStatus.PENDING, assigned_at=now
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _enqueue(campaign_id: int, send_ids: list[int]) -> int:
    """Queue the sends in batches after commit, spaced to respect the rate limit."""
    if not send_ids:
        return 0
    from .tasks import deliver_batch

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


# -- lifecycle -------------------------------------------------------------------------------


def _check_complete(campaign: Campaign) -> None:
    problems = []
    if campaign.schedule != Schedule.STAGE_ENTRY and campaign.segment_id is None:
        problems.append("a target segment")
    if campaign.schedule == Schedule.STAGE_ENTRY and campaign.trigger_stage_id is None:
        problems.append("the journey stage that triggers it")
    if campaign.offer_kind == OfferKind.MULTIPLIER and not campaign.multiplier:
        problems.append("the multiplier")
    if campaign.offer_kind == OfferKind.BONUS and not campaign.bonus_points:
        problems.append("the bonus points")
    if campaign.offer_kind == OfferKind.REWARD and campaign.reward_id is None:
        problems.append("the reward")
    if problems:
        raise CampaignIncomplete(f"The campaign needs {', '.join(problems)}.", missing=problems)


@transaction.atomic
def launch_campaign(*, campaign: Campaign, actor=None, now: datetime | None = None) -> Campaign:
    """Start a draft: a one-off campaign due now is sent right away (in batches, after commit),
    otherwise it waits for its time; an always-on campaign reacts to entries from now on."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != CampaignStatus.DRAFT:
        raise CampaignNotDraft(status=campaign.status)
    if campaign.ends_at <= now:
        raise CampaignEnded()
    _check_complete(campaign)
    campaign.launched_at = now
    campaign.launched_by = actor
    campaign.trigger_cursor = max(now, campaign.starts_at)
    campaign.status = CampaignStatus.SCHEDULED
    campaign.save(
        update_fields=["launched_at", "launched_by", "trigger_cursor", "status", "updated_at"]
    )
    _start_if_due(campaign, now)
    logger.info("launched campaign %s (%s)", campaign.pk, campaign.status)
    return campaign


def _send_time(campaign: Campaign) -> datetime:
    return max(campaign.send_at or campaign.starts_at, campaign.starts_at)


def _start_if_due(campaign: Campaign, now: datetime) -> None:
    if campaign.status != CampaignStatus.SCHEDULED:
        return
    if campaign.schedule == Schedule.ONCE:
        if _send_time(campaign) > now:
            return
        campaign.status = CampaignStatus.RUNNING
        campaign.save(update_fields=["status", "updated_at"])
        pending = _add_to_campaign(
            campaign, audience_member_ids(campaign), trigger=Schedule.ONCE, now=now
        )
        _enqueue(campaign.pk, pending)
    elif campaign.starts_at <= now:
        campaign.status = CampaignStatus.RUNNING
        campaign.save(update_fields=["status", "updated_at"])


@transaction.atomic
def cancel_campaign(*, campaign: Campaign) -> Campaign:
    """Stop sending and stop the offer; what was sent stays recorded."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED):
        return campaign
    campaign.status = CampaignStatus.CANCELLED
    campaign.save(update_fields=["status", "updated_at"])
    return campaign


def run_triggers(*, campaign_id: int, now: datetime | None = None) -> int:
    """Add the members who entered the trigger stage or the segment since the cursor; returns
    how many were added. Each member at most once per campaign, however often they enter."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        if campaign.status != CampaignStatus.RUNNING or campaign.schedule == Schedule.ONCE:
            return 0
        floor = max(campaign.starts_at, campaign.launched_at or campaign.starts_at)
        since = max(floor, (campaign.trigger_cursor or floor) - TRIGGER_LOOKBACK)
        until = min(now, campaign.ends_at)
        if campaign.schedule == Schedule.STAGE_ENTRY:
            entered = StageTransition.objects.filter(
                to_stage_id=campaign.trigger_stage_id, at__gte=since, at__lte=until
            )
            if campaign.segment_id:
                entered = entered.filter(
                    member_id__in=SegmentMembership.objects.filter(
                        segment_id=campaign.segment_id
                    ).values("member_id")
                )
        else:
            entered = SegmentMembership.objects.filter(
                segment_id=campaign.segment_id, added_at__gte=since, added_at__lte=until
            )
        member_ids = set(entered.values_list("member_id", flat=True))
        pending = _add_to_campaign(campaign, member_ids, trigger=campaign.schedule, now=now)
        added = CampaignSend.objects.filter(campaign=campaign, assigned_at=now).count()
        Campaign.objects.filter(pk=campaign.pk).update(trigger_cursor=until)
        _enqueue(campaign.pk, pending)
    return added


def run_due_campaigns(*, now: datetime | None = None) -> dict[str, int]:
    """The scheduler's tick: start what is due, run always-on triggers, complete what ended."""
    now = now or timezone.now()
    completed = Campaign.objects.filter(
        status__in=[CampaignStatus.SCHEDULED, CampaignStatus.RUNNING], ends_at__lte=now
    ).update(status=CampaignStatus.COMPLETED, updated_at=now)
    started = 0
    for pk in Campaign.objects.filter(status=CampaignStatus.SCHEDULED).values_list("pk", flat=True):
        with transaction.atomic():
            campaign = Campaign.objects.select_for_update().get(pk=pk)
            _start_if_due(campaign, now)
            started += campaign.status == CampaignStatus.RUNNING
    triggered = 0
    always_on = Campaign.objects.filter(status=CampaignStatus.RUNNING).exclude(
        schedule=Schedule.ONCE
    )
    for pk in always_on.values_list("pk", flat=True):
        triggered += run_triggers(campaign_id=pk, now=now)
    return {"completed": completed, "started": started, "triggered": triggered}


# -- sending ---------------------------------------------------------------------------------


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
            Campaign.objects.filter(pk=campaign.pk).update(
                points_awarded=F("points_awarded") + awarded
            )
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


def _award_bonus(campaign: Campaign, member: Member, now: datetime) -> int:
    txn = award_points(
        member=member,
        points=campaign.bonus_points,
        reason=campaign.offer_title or f"Bonus: {campaign.name}",
        idempotency_key=f"campaign:{campaign.pk}:bonus:{member.pk}",
        source="campaign",
        source_ref=str(campaign.pk),
        occurred_at=now,
        qualifying=False,
    )
    _, created = OfferAward.objects.get_or_create(
        campaign=campaign,
        transaction=txn,
        defaults={"member": member, "points": txn.points + txn.pending_points, "awarded_at": now},
    )
    return campaign.bonus_points if created else 0


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


# -- offers in the earning engine ------------------------------------------------------------


def _multiplier_campaigns(member_id: int, when: datetime):
    return Campaign.objects.filter(
        offer_kind=OfferKind.MULTIPLIER,
        status=CampaignStatus.RUNNING,
        starts_at__lte=when,
        ends_at__gt=when,
        sends__member_id=member_id,
        sends__group=Group.TREATMENT,
        sends__status=SendStatus.SENT,
        sends__sent_at__lte=when,
    )


def multiplier_offers(member_id: int, event, when: datetime) -> list[ExtraMultiplier]:
    """rewards.registry provider: the running multiplier offers the member received, for an
    event inside the campaign's window. A budgeted campaign's row is locked until the award
    commits, so concurrent awards cannot overspend it (none when called outside a
    transaction, as the rule simulator does)."""
    campaigns = _multiplier_campaigns(member_id, when)
    campaigns = [
        c
        for c in campaigns
        if not c.multiplier_event_type or c.multiplier_event_type == event.event_type
    ]
    offers = []
    for campaign in campaigns:
        if campaign.points_budget is not None and connection.in_atomic_block:
            campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        left = campaign.budget_left
        if left == 0:
            continue
        offers.append(ExtraMultiplier(campaign.offer_label, campaign.multiplier, left))
    return offers


def _members_with_multiplier_offers(member_ids, start: datetime, end: datetime) -> set[int]:
    """A superset of the members multiplier_offers may give an offer to for an event between
    start and end, in one query (bulk awards ask only for these)."""
    return set(
        CampaignSend.objects.filter(
            member_id__in=member_ids,
            group=Group.TREATMENT,
            status=SendStatus.SENT,
            sent_at__lte=end,
            campaign__offer_kind=OfferKind.MULTIPLIER,
            campaign__status=CampaignStatus.RUNNING,
            campaign__starts_at__lte=end,
            campaign__ends_at__gt=start,
        ).values_list("member_id", flat=True)
    )


multiplier_offers.members_with_offers = _members_with_multiplier_offers


def record_offer_points(*, member_id: int, transaction, lines) -> None:
    """rewards.registry listener: book the points a multiplier offer added to an award."""
    offer_lines = {
        line.rule_name: line.points
        for line in lines
        if line.rule_id is None and line.rule_name.startswith("Offer: ") and line.points > 0
    }
    if not offer_lines:
        return
    when = transaction.occurred_at
    for campaign in _multiplier_campaigns(member_id, when):
        points = offer_lines.get(campaign.offer_label)
        if not points:
            continue
        OfferAward.objects.create(
            campaign=campaign,
            member_id=member_id,
            transaction=transaction,
            points=points,
            awarded_at=when,
        )
        Campaign.objects.filter(pk=campaign.pk).update(points_awarded=F("points_awarded") + points)


# -- unsubscribing ---------------------------------------------------------------------------


def member_for_unsubscribe(token: str) -> tuple[Member, int | None]:
    try:
        data = messages.read_unsubscribe_token(token)
        member = Member.objects.get(pk=data["m"])
    except (signing.BadSignature, KeyError, TypeError, Member.DoesNotExist) as exc:
        raise InvalidUnsubscribeLink() from exc
    return member, data.get("c")


def unsubscribe(*, token: str) -> Member:
    """Withdraw marketing consent from a link in a message (no login): the consent history
    records it like any other change."""
    member, _campaign_id = member_for_unsubscribe(token)
    return set_consent(member=member, given=False, source="unsubscribe")
