from decimal import Decimal

import pytest
import time_machine

from rewards.models import PointsTransaction, Referral, ReferralStatus
from rewards.services import EventInput, award_for_event, record_referral

from .factories import EarningRuleFactory, MemberFactory
from .helpers import at, balance

pytestmark = pytest.mark.django_db


@pytest.fixture
def referral_program(program):
    program.referrer_points = 500
    program.referee_points = 250
    program.referral_monthly_cap = 2
    program.save()
    EarningRuleFactory()
    return program


def buy(member, order_id, amount="20"):
    return award_for_event(
        member=member,
        event=EventInput(event_type="purchase", amount=Decimal(amount), order_id=order_id),
        idempotency_key=f"{member.pk}-{order_id}",
    )


def test_both_are_rewarded_on_the_referees_first_purchase(referral_program):
    referrer = MemberFactory()
    referee = MemberFactory(referral_code=referrer.referral_code)
    assert referee.referred_by == referrer

    buy(referee, "O1")
    assert balance(referrer) == 500
    assert balance(referee) == 20 + 250
    referral = Referral.objects.get(referee=referee)
    assert referral.status == ReferralStatus.QUALIFIED and referral.qualified_at is not None

    buy(referee, "O2")
    assert balance(referrer) == 500
    assert balance(referee) == 40 + 250
    assert PointsTransaction.objects.filter(source="referral").count() == 2


def test_member_without_referrer_gets_only_purchase_points(referral_program):
    member = MemberFactory()
    buy(member, "O1")
    assert balance(member) == 20
    assert not Referral.objects.exists()


def test_self_referral_with_the_same_phone_is_rejected(referral_program):
    referrer = MemberFactory(phone="+31 6 1234 5678")
    referee = MemberFactory(referral_code=referrer.referral_code, phone="+31-6-12345678")
    buy(referee, "O1")
    referral = Referral.objects.get(referee=referee)
    assert referral.status == ReferralStatus.REJECTED
    assert referral.reason == "self-referral: same phone"
    assert balance(referrer) == 0 and balance(referee) == 20


def test_self_referral_same_member_is_rejected(referral_program):
    member = MemberFactory()
    member.referred_by = member
    member.save()
    referral = record_referral(referee=member)
    assert referral.status == ReferralStatus.REJECTED
    buy(member, "O1")
    assert balance(member) == 20


def test_referrals_are_capped_per_referrer_per_month(referral_program):
    referrer = MemberFactory()
    referees = [MemberFactory(referral_code=referrer.referral_code) for _ in range(4)]
    with time_machine.travel(at(2025, 5, 3, 12), tick=False):
        for i, referee in enumerate(referees[:3]):
            buy(referee, f"O{i}")
    statuses = [Referral.objects.get(referee=r).status for r in referees[:3]]
    assert statuses == [ReferralStatus.QUALIFIED, ReferralStatus.QUALIFIED, ReferralStatus.REJECTED]
    assert "monthly cap" in Referral.objects.get(referee=referees[2]).reason
    assert balance(referrer) == 1000
    assert balance(referees[2]) == 20
    with time_machine.travel(at(2025, 6, 1, 12), tick=False):
        buy(referees[3], "O3")
    assert Referral.objects.get(referee=referees[3]).status == ReferralStatus.QUALIFIED
    assert balance(referrer) == 1500
