"""Unsubscribing from a link in a message."""

from django.core import signing

from members.models import Member
from members.services import set_consent

from .. import messages
from ..exceptions import InvalidUnsubscribeLink


def member_for_unsubscribe(token: str) -> Member:
    try:
        data = messages.read_unsubscribe_token(token)
        member = Member.objects.get(pk=data["m"])
    except (signing.BadSignature, KeyError, TypeError, Member.DoesNotExist) as exc:
        raise InvalidUnsubscribeLink() from exc
    return member


def unsubscribe(*, token: str) -> Member:
    """Withdraw marketing consent from a link in a message (no login): the consent history
    records it like any other change."""
    member = member_for_unsubscribe(token)
    return set_consent(member=member, given=False, source="unsubscribe")
