from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from members.services import enroll_member
from rewards.services import EventInput, award_for_event

from .factories import MemberFactory

pytestmark = pytest.mark.django_db


def purchase(member, key):
    return award_for_event(
        member=member,
        event=EventInput(
            event_type="purchase",
            occurred_at=timezone.now(),
            amount=Decimal("20.00"),
            currency="EUR",
            order_id=key,
        ),
        idempotency_key=key,
    )


def test_referrals_page_shows_each_friend_and_where_the_referral_stands(client, program):
    me = MemberFactory(password="pw-referrals-123")
    waiting, _ = enroll_member(
        channel="web",
        email="w@example.com",
        first_name="Wanda",
        last_name="Zed",
        referral_code=me.referral_code,
    )
    bought, _ = enroll_member(
        channel="web", email="b@example.com", first_name="Bert", referral_code=me.referral_code
    )
    purchase(bought, "order-1")
    stranger = MemberFactory()
    enroll_member(
        channel="web",
        email="s@example.com",
        first_name="Sally",
        referral_code=stranger.referral_code,
    )

    client.force_login(me.user)
    page = client.get(reverse("rewards:referrals")).content.decode()
    assert "Wanda Z." in page and "waiting for a first purchase" in page
    assert "Bert" in page and "Qualified" in page
    assert "Sally" not in page  # another member's referral
    assert "Zed" not in page  # only an initial of the friend's last name
    assert f"?ref={me.referral_code}" in page


def test_signup_link_prefills_the_referral_code(client):
    referrer = MemberFactory()
    page = client.get(reverse("portal:signup"), {"ref": referrer.referral_code}).content.decode()
    assert f'value="{referrer.referral_code}"' in page
