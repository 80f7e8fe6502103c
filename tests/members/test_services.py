import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from members import services
from members.exceptions import IdentityConflict, MemberClosed
from members.models import ConsentChange, Member, MemberStatus

from .factories import MemberFactory


@pytest.mark.django_db
def test_enroll_creates_member_with_valid_number_and_login():
    member, created = services.enroll_member(
        channel="web", email="Ana.Lopez@Example.com", password="s3cret-Passw0rd", first_name="Ana"
    )
    assert created
    assert member.email == "ana.lopez@example.com"
    assert services.is_valid_member_number(member.member_number)
    assert len(member.referral_code) == 8
    assert member.user.check_password("s3cret-Passw0rd")
    assert member.user.username == "ana.lopez@example.com"
    assert not member.user.is_staff


@pytest.mark.django_db
def test_enroll_is_idempotent_on_email_in_any_case():
    first, created1 = services.enroll_member(channel="web", email="bo@example.com")
    again, created2 = services.enroll_member(channel="pos", email="BO@Example.COM", first_name="X")
    assert created1 and not created2
    assert again.pk == first.pk
    assert again.first_name == ""  # the existing member is returned unchanged
    assert Member.objects.count() == 1


@pytest.mark.django_db
def test_enroll_is_idempotent_on_external_id():
    first, _ = services.enroll_member(channel="import", external_id="CRM-1")
    again, created = services.enroll_member(channel="api", external_id="CRM-1")
    assert not created and again.pk == first.pk
    assert first.user is None  # no email, no portal login


@pytest.mark.django_db
def test_enroll_refuses_email_and_external_id_of_two_members():
    services.enroll_member(channel="api", email="a@example.com")
    services.enroll_member(channel="api", external_id="CRM-2")
    with pytest.raises(IdentityConflict):
        services.enroll_member(channel="api", email="a@example.com", external_id="CRM-2")


@pytest.mark.django_db
def test_enroll_requires_email_or_external_id():
    with pytest.raises(ValueError):
        services.enroll_member(channel="api")


@pytest.mark.django_db
def test_enroll_records_referrer():
    referrer = MemberFactory()
    member, _ = services.enroll_member(
        channel="web", email="new@example.com", referral_code=referrer.referral_code.lower()
    )
    assert member.referred_by_id == referrer.pk


@pytest.mark.django_db(transaction=True)
def test_concurrent_enrollments_of_one_email_give_one_member():
    results, errors = [], []

    def enroll():
        try:
            member, _ = services.enroll_member(channel="api", email="race@example.com")
            results.append(member.pk)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=enroll) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(results)) == 1
    assert Member.objects.filter(email="race@example.com").count() == 1


@pytest.mark.django_db
def test_update_profile_changes_login_email_too():
    member = MemberFactory(email="old@example.com")
    services.update_profile(member=member, email="New@Example.com", city="Utrecht")
    member.refresh_from_db()
    assert member.email == "new@example.com" and member.city == "Utrecht"
    assert member.user.username == "new@example.com"


@pytest.mark.django_db
def test_update_profile_refuses_email_of_another_member():
    MemberFactory(email="taken@example.com")
    member = MemberFactory()
    with pytest.raises(IdentityConflict):
        services.update_profile(member=member, email="TAKEN@example.com")


@pytest.mark.django_db
def test_consent_keeps_its_history_with_times():
    member = MemberFactory()
    services.set_consent(member=member, given=True, source="portal")
    services.set_consent(member=member, given=True, source="portal")  # unchanged: not recorded
    services.set_consent(member=member, given=False, source="api")
    member.refresh_from_db()
    assert member.marketing_consent is False
    assert member.consent_changed_at is not None
    assert list(ConsentChange.objects.filter(member=member).values_list("given", "source")) == [
        (False, "api"),
        (True, "portal"),
    ]


@pytest.mark.django_db
def test_close_anonymises_and_removes_login():
    member = MemberFactory(email="gone@example.com", phone="+31 6 1", external_id="CRM-9")
    user_id = member.user_id
    services.close_member(member=member)
    member.refresh_from_db()
    assert member.status == MemberStatus.CLOSED
    assert (member.email, member.first_name, member.last_name, member.phone) == (None, "", "", "")
    assert member.external_id is None and member.birth_date is None
    assert not get_user_model().objects.filter(pk=user_id).exists()
    # The email is free again for a new enrollment.
    _, created = services.enroll_member(channel="web", email="gone@example.com")
    assert created
    with pytest.raises(MemberClosed):
        services.suspend_member(member=member)


@pytest.mark.django_db
def test_suspend_and_reactivate():
    member = MemberFactory()
    assert services.suspend_member(member=member).status == MemberStatus.SUSPENDED
    assert services.reactivate_member(member=member).status == MemberStatus.ACTIVE


@pytest.mark.django_db
def test_export_holds_profile_and_consent_history():
    member = MemberFactory(email="me@example.com", first_name="Me", city="Gent")
    services.set_consent(member=member, given=True)
    data = services.export_member_data(member=member)
    assert data["profile"]["email"] == "me@example.com"
    assert data["profile"]["city"] == "Gent"
    assert data["profile"]["member_number"] == member.member_number
    assert data["consent_history"][0]["given"] is True


@pytest.mark.django_db
def test_api_key_is_stored_hashed():
    user = get_user_model().objects.create_user(username="svc")
    key, raw = services.create_api_key(user=user, name="shop")
    assert raw not in key.hashed_key
    assert key.hashed_key == key.digest(raw)
    assert raw.startswith(key.prefix + ".")


def test_member_number_check_digit_catches_typos():
    number = services.generate_member_number()
    assert services.is_valid_member_number(number)
    wrong = number[:-2] + str((int(number[-2]) + 1) % 10) + number[-1]
    assert not services.is_valid_member_number(wrong)
