"""Personalised campaign messages: Django's template language on a restricted context.

Marketers write subject and body templates such as "Hi {{ first_name }}, {{ points }} points
are waiting". They are rendered by a separate template engine with no template loaders and no
custom tag libraries, against a context of plain values only (strings, numbers, dates), so a
template cannot reach model objects, settings or other members. Tags that load, include or
dump anything are refused when the campaign is saved.
"""

import re
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.db.models import Min, Sum
from django.template import Context, Engine, TemplateSyntaxError
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from members.models import Member
from rewards.models import PointsAccount, PointsBucket, PointsTransaction, Tier, TierBasis
from rewards.selectors import program_settings, qualification_window_start, tier_threshold

ENGINE = Engine(loaders=[], libraries={}, autoescape=False, string_if_invalid="", debug=False)
FORBIDDEN_TAGS = re.compile(r"{%-?\s*(load|include|extends|debug|ssi|csrf_token|url)\b")
UNSUBSCRIBE_SALT = "campaigns.unsubscribe"
EXPIRING_DAYS = 30

# What a template may use; the admin shows this list next to the fields.
PLACEHOLDERS = {
    "first_name": "First name",
    "last_name": "Last name",
    "full_name": "Full name",
    "member_number": "Member number",
    "city": "City",
    "points": "Points balance",
    "points_name": "What the program calls points",
    "tier": "Current tier",
    "next_tier": "Next tier (empty at the top)",
    "points_to_next_tier": "Points still needed for the next tier",
    "expiring_points": f"Points expiring in the next {EXPIRING_DAYS} days",
    "expiring_on": "When the first of those expire",
    "program_name": "The program's name",
    "offer_title": "The offer's title",
    "offer_ends": "When the offer ends",
    "multiplier": "The offer's multiplier",
    "bonus_points": "The offer's bonus points",
    "reward": "The offered reward",
}


def check_template(source: str) -> None:
    """Raise TemplateSyntaxError when the template is invalid or uses a forbidden tag."""
    match = FORBIDDEN_TAGS.search(source)
    if match:
        raise TemplateSyntaxError(f"The {{% {match.group(1)} %}} tag is not allowed here.")
    ENGINE.from_string(source)


def render_template(source: str, context: dict) -> str:
    check_template(source)
    return ENGINE.from_string(source).render(Context(context, autoescape=False))


def unsubscribe_token(member_id: int, campaign_id: int | None = None) -> str:
    return signing.dumps({"m": member_id, "c": campaign_id}, salt=UNSUBSCRIBE_SALT, compress=True)


def read_unsubscribe_token(token: str) -> dict:
    """{"m": member id, "c": campaign id}; raises signing.BadSignature."""
    return signing.loads(token, salt=UNSUBSCRIBE_SALT)


def absolute(path: str) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def member_contexts(members: list[Member], campaign, *, now=None) -> dict[int, dict]:
    """Template contexts for many members in a fixed number of queries (batch sending)."""
    now = now or timezone.now()
    program = program_settings()
    zone = ZoneInfo(program.timezone)
    ids = [m.pk for m in members]
    accounts = {
        a.member_id: a
        for a in PointsAccount.objects.filter(member_id__in=ids).select_related("tier")
    }
    tiers = list(Tier.objects.order_by("rank"))
    expiring: dict[int, tuple[int, object]] = {
        row["member_id"]: (row["points"], row["first"])
        for row in PointsBucket.objects.filter(
            member_id__in=ids,
            pending=False,
            remaining__gt=0,
            expires_at__gt=now,
            expires_at__lte=now + timedelta(days=EXPIRING_DAYS),
        )
        .values("member_id")
        .annotate(points=Sum("remaining"), first=Min("expires_at"))
        .order_by()
    }
    needs_values = program.tier_basis == TierBasis.POINTS and len(tiers) > 1
    values = _qualifying_points(ids, accounts, now, program) if needs_values else {}
    offer = _offer_context(campaign, zone)
    contexts = {}
    for member in members:
        account = accounts.get(member.pk)
        tier = account.tier if account and account.tier_id else (tiers[0] if tiers else None)
        higher = [t for t in tiers if tier is None or t.rank > tier.rank]
        next_tier = higher[0] if higher else None
        to_next = None
        if next_tier is not None and program.tier_basis == TierBasis.POINTS:
            to_next = max(
                0, int(tier_threshold(next_tier, program)) - int(values.get(member.pk, 0))
            )
        points_expiring, first_expiry = expiring.get(member.pk, (0, None))
        contexts[member.pk] = {
            "first_name": member.first_name or "there",
            "last_name": member.last_name,
            "full_name": member.full_name,
            "member_number": member.member_number,
            "city": member.city,
            "points": account.balance if account else 0,
            "points_name": program.points_name,
            "tier": tier.name if tier else "",
            "next_tier": next_tier.name if next_tier else "",
            "points_to_next_tier": to_next if to_next is not None else "",
            "expiring_points": points_expiring,
            # The last day they can be used, as the portal shows it.
            "expiring_on": (first_expiry - timedelta(microseconds=1)).astimezone(zone).date()
            if first_expiry
            else "",
            "program_name": program.name,
            **offer,
        }
    return contexts


def _qualifying_points(ids: list[int], accounts: dict, now, program) -> dict[int, int]:
    """What tiers are measured on (points basis) for these members only, in one query at most:
    qualifying points in the program's rolling window, or all-time from the accounts."""
    start = qualification_window_start(now, program)
    if start is None:
        return {pk: account.lifetime_earned for pk, account in accounts.items()}
    rows = (
        PointsTransaction.objects.filter(
            member_id__in=ids, occurred_at__gt=start, occurred_at__lte=now
        )
        .values("member_id")
        .annotate(total=Sum("qualifying_points"))
        .values_list("member_id", "total")
    )
    return {pk: max(0, total or 0) for pk, total in rows}


def _offer_context(campaign, zone) -> dict:
    return {
        "offer_title": campaign.offer_title,
        "offer_ends": campaign.ends_at.astimezone(zone).date() if campaign.ends_at else "",
        "multiplier": campaign.multiplier.normalize() if campaign.multiplier else "",
        "bonus_points": campaign.bonus_points or "",
        "reward": campaign.reward.name if campaign.reward_id else "",
    }


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    text: str  # the body with the standard footer, as sent
    unsubscribe_url: str


def render_message(campaign, context: dict, member_id: int) -> Rendered:
    subject = " ".join(render_template(campaign.subject_template, context).split())[:200]
    body = render_template(campaign.body_template, context).strip()
    url = absolute(
        reverse("campaigns:unsubscribe", args=[unsubscribe_token(member_id, campaign.pk)])
    )
    text = render_to_string(
        "emails/campaign_message.txt",
        {
            "body": body,
            "unsubscribe_url": url,
            "offers_url": absolute(reverse("campaigns:offers")),
            "program_name": context.get("program_name", ""),
            "has_offer": campaign.offer_kind != "none",
        },
    )
    return Rendered(subject=subject, body=body, text=text, unsubscribe_url=url)


def render_for_member(campaign, member: Member, *, now=None) -> Rendered:
    """One member's message (the admin's preview and test send)."""
    context = member_contexts([member], campaign, now=now)[member.pk]
    return render_message(campaign, context, member.pk)
