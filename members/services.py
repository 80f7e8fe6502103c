"""Every write about members goes through these functions, each one transaction."""

import logging
import secrets
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from . import registry
from .exceptions import IdentityConflict, MemberClosed
from .models import ApiKey, Channel, ConsentChange, Member, MemberStatus

logger = logging.getLogger(__name__)

REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I lookalikes
PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "phone",
    "birth_date",
    "country",
    "city",
    "preferred_channel",
    "locale",
)


def normalize_email(email: str | None) -> str | None:
    email = (email or "").strip().lower()
    return email or None


def _luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def generate_member_number() -> str:
    """Ten digits, the last a Luhn check digit, so a mistyped number is caught at the till."""
    body = str(secrets.randbelow(9 * 10**8) + 10**8)
    return body + _luhn_digit(body)


def is_valid_member_number(number: str) -> bool:
    return len(number) == 10 and number.isdigit() and _luhn_digit(number[:-1]) == number[-1]


def generate_referral_code() -> str:
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(8))


def find_existing_member(*, email: str | None, external_id: str | None) -> Member | None:
    email = normalize_email(email)
    by_email = (
        Member.objects.annotate(email_lower=Lower("email")).filter(email_lower=email).first()
        if email
        else None
    )
    by_external = Member.objects.filter(external_id=external_id).first() if external_id else None
    if by_email and by_external and by_email.pk != by_external.pk:
        raise IdentityConflict(
            "This email and this external id belong to two different members.",
            email_member=by_email.pk,
            external_member=by_external.pk,
        )
    return by_email or by_external


def enroll_member(
    *,
    channel: str,
    email: str | None = None,
    external_id: str | None = None,
    password: str | None = None,
    enrolled_at: datetime | None = None,
    referral_code: str | None = None,
    marketing_consent: bool = False,
    **profile: Any,
) -> tuple[Member, bool]:
    """Enroll a customer; idempotent on email and on external_id.

    Returns (member, created). The same email (any case) or external id returns the member
    already enrolled, unchanged. A portal login is created when an email is given: with the
    password when there is one, otherwise unusable until the member resets it ("claims" it).
    """
    email = normalize_email(email)
    external_id = (external_id or "").strip() or None
    if not email and not external_id:
        raise ValueError("An email or an external id is required to enroll.")
    unknown = set(profile) - set(PROFILE_FIELDS)
    if unknown:
        raise TypeError(f"Unknown profile fields: {sorted(unknown)}")

    existing = find_existing_member(email=email, external_id=external_id)
    if existing:
        return existing, False

    try:
        with transaction.atomic():
            now = timezone.now()
            referrer = None
            if referral_code:
                referrer = Member.objects.filter(
                    referral_code=referral_code.strip().upper()
                ).first()
            user = None
            if email:
                user = _create_user(email=email, password=password, profile=profile)
            member = Member(
                user=user,
                email=email,
                external_id=external_id,
                enrollment_channel=channel,
                enrolled_at=enrolled_at or now,
                referred_by=referrer,
                marketing_consent=marketing_consent,
                consent_changed_at=now if marketing_consent else None,
                **{k: v if v is not None else "" for k, v in profile.items() if k != "birth_date"},
                birth_date=profile.get("birth_date"),
            )
            _save_with_unique_codes(member)
            if marketing_consent:
                ConsentChange.objects.create(
                    member=member, given=True, changed_at=now, source=channel
                )
    except IntegrityError:
        # A concurrent enrollment of the same person won the race: return theirs.
        existing = find_existing_member(email=email, external_id=external_id)
        if existing is None:
            raise
        return existing, False
    if email and channel != Channel.IMPORT:
        from .tasks import send_welcome_email

        transaction.on_commit(lambda: send_welcome_email.delay(member.pk), robust=True)
    logger.info("enrolled member %s via %s", member.member_number, channel)
    return member, True


def _create_user(*, email: str, password: str | None, profile: dict):
    User = get_user_model()
    user = User(
        username=email,
        email=email,
        first_name=(profile.get("first_name") or "")[:150],
        last_name=(profile.get("last_name") or "")[:150],
    )
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    return user


def _save_with_unique_codes(member: Member, attempts: int = 5) -> None:
    for attempt in range(attempts):
        member.member_number = generate_member_number()
        member.referral_code = generate_referral_code()
        try:
            with transaction.atomic():
                member.save()
            return
        except IntegrityError as exc:
            if "member_number" not in str(exc) and "referral_code" not in str(exc):
                raise
            if attempt == attempts - 1:
                raise


@transaction.atomic
def update_profile(
    *, member: Member, email: str | None = None, external_id: str | None = None, **changes: Any
) -> Member:
    """Change profile fields (and the email, which is also the portal login).

    None leaves email and external_id unchanged; an empty external_id clears it.
    """
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.status == MemberStatus.CLOSED:
        raise MemberClosed()
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise TypeError(f"Unknown profile fields: {sorted(unknown)}")
    for field, value in changes.items():
        setattr(member, field, value if value is not None or field == "birth_date" else "")
    if email is not None:
        new_email = normalize_email(email)
        if new_email != member.email:
            clash = find_existing_member(email=new_email, external_id=None)
            if clash and clash.pk != member.pk:
                raise IdentityConflict("Another member already uses this email.")
            member.email = new_email
            if member.user_id and new_email:
                member.user.email = new_email
                member.user.username = new_email
                member.user.save(update_fields=["email", "username"])
    if external_id is not None and (external_id.strip() or None) != member.external_id:
        new_external = external_id.strip() or None
        clash = find_existing_member(email=None, external_id=new_external) if new_external else None
        if clash and clash.pk != member.pk:
            raise IdentityConflict("Another member already has this external id.")
        member.external_id = new_external
    if member.user_id:
        member.user.first_name = member.first_name[:150]
        member.user.last_name = member.last_name[:150]
        member.user.save(update_fields=["first_name", "last_name"])
    member.save()
    return member


@transaction.atomic
def set_consent(*, member: Member, given: bool, source: str = "portal") -> Member:
    """Record marketing consent given or withdrawn, with its time; no-op when unchanged."""
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.marketing_consent == given and member.consent_changed_at:
        return member
    now = timezone.now()
    member.marketing_consent = given
    member.consent_changed_at = now
    member.save(update_fields=["marketing_consent", "consent_changed_at", "updated_at"])
    ConsentChange.objects.create(member=member, given=given, changed_at=now, source=source)
    return member


@transaction.atomic
def suspend_member(*, member: Member) -> Member:
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.status == MemberStatus.CLOSED:
        raise MemberClosed()
    member.status = MemberStatus.SUSPENDED
    member.save(update_fields=["status", "updated_at"])
    return member


@transaction.atomic
def reactivate_member(*, member: Member) -> Member:
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.status == MemberStatus.CLOSED:
        raise MemberClosed()
    member.status = MemberStatus.ACTIVE
    member.save(update_fields=["status", "updated_at"])
    return member


@transaction.atomic
def close_member(*, member: Member) -> Member:
    """Close the account: personal data is anonymised, the login removed; the ledger stays."""
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.status == MemberStatus.CLOSED:
        return member
    now = timezone.now()
    user = member.user
    member.status = MemberStatus.CLOSED
    member.closed_at = now
    member.email = None
    member.external_id = None
    member.first_name = ""
    member.last_name = ""
    member.phone = ""
    member.birth_date = None
    member.city = ""
    member.user = None
    if member.marketing_consent:
        member.marketing_consent = False
        member.consent_changed_at = now
        ConsentChange.objects.create(member=member, given=False, changed_at=now, source="closure")
    member.save()
    if user is not None:
        user.delete()
    logger.info("closed member %s", member.member_number)
    return member


def export_member_data(*, member: Member) -> dict[str, Any]:
    """Everything held on a member, as JSON-serialisable data (right of access)."""
    profile = {
        "member_number": member.member_number,
        "email": member.email,
        "first_name": member.first_name,
        "last_name": member.last_name,
        "phone": member.phone,
        "birth_date": member.birth_date.isoformat() if member.birth_date else None,
        "country": member.country,
        "city": member.city,
        "preferred_channel": member.preferred_channel,
        "locale": member.locale,
        "marketing_consent": member.marketing_consent,
        "consent_changed_at": _iso(member.consent_changed_at),
        "enrollment_channel": member.enrollment_channel,
        "enrolled_at": _iso(member.enrolled_at),
        "status": member.status,
        "external_id": member.external_id,
        "referral_code": member.referral_code,
        "referred_by": member.referred_by.member_number if member.referred_by_id else None,
    }
    data: dict[str, Any] = {
        "exported_at": _iso(timezone.now()),
        "profile": profile,
        "consent_history": [
            {"given": c.given, "changed_at": _iso(c.changed_at), "source": c.source}
            for c in member.consent_changes.all()
        ],
    }
    for name, builder in registry.export_sections.items():
        data[name] = builder(member)
    return data


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@transaction.atomic
def create_api_key(*, user, name: str) -> tuple[ApiKey, str]:
    """Create a key for the user; returns the model and the raw key, which is never stored."""
    raw, prefix = ApiKey.generate()
    key = ApiKey.objects.create(user=user, name=name, prefix=prefix, hashed_key=ApiKey.digest(raw))
    return key, raw


@transaction.atomic
def revoke_api_key(*, key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk).update(revoked=True)


__all__ = [
    "Channel",
    "close_member",
    "create_api_key",
    "enroll_member",
    "export_member_data",
    "reactivate_member",
    "set_consent",
    "suspend_member",
    "update_profile",
]
