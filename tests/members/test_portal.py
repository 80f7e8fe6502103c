import json

import pytest
from django.core import mail
from django.urls import reverse

from members.models import Member, MemberStatus

from .factories import MemberFactory

PW = "pw-for-portal-tests-1"


@pytest.mark.django_db
def test_signup_enrolls_logs_in_and_shows_member_number(client):
    response = client.post(
        reverse("portal:signup"),
        {
            "email": "Joan@Example.com",
            "first_name": "Joan",
            "last_name": "Miro",
            "password1": PW,
            "password2": PW,
            "marketing_consent": "on",
        },
        follow=True,
    )
    member = Member.objects.get(email="joan@example.com")
    assert member.enrollment_channel == "web" and member.marketing_consent
    assert member.member_number in response.content.decode()


@pytest.mark.django_db
def test_signup_with_enrolled_email_is_a_form_error(client):
    MemberFactory(email="dup@example.com")
    response = client.post(
        reverse("portal:signup"),
        {
            "email": "DUP@example.com",
            "first_name": "A",
            "last_name": "B",
            "password1": PW,
            "password2": PW,
        },
    )
    assert response.status_code == 200
    assert "already enrolled" in response.content.decode()
    assert Member.objects.count() == 1


@pytest.mark.django_db
def test_signup_with_mismatched_passwords_is_a_form_error(client):
    response = client.post(
        reverse("portal:signup"),
        {
            "email": "a@example.com",
            "first_name": "A",
            "last_name": "B",
            "password1": PW,
            "password2": PW + "x",
        },
    )
    assert "do not match" in response.content.decode()
    assert not Member.objects.exists()


@pytest.mark.django_db
def test_login_with_email_in_any_case(client):
    MemberFactory(email="case@example.com", password=PW)
    response = client.post(
        reverse("portal:login"), {"username": "CASE@example.com", "password": PW}
    )
    assert response.status_code == 302 and response["Location"] == reverse("portal:home")


@pytest.mark.django_db
def test_failed_logins_are_rate_limited(client):
    MemberFactory(email="target@example.com", password=PW)
    for _ in range(5):
        client.post(reverse("portal:login"), {"username": "target@example.com", "password": "no"})
    # Even the right password is refused while locked out.
    response = client.post(
        reverse("portal:login"), {"username": "target@example.com", "password": PW}
    )
    assert response.status_code == 429
    assert "Too many failed" in response.content.decode()


@pytest.mark.django_db
def test_portal_requires_login(client):
    response = client.get(reverse("portal:profile"))
    assert response.status_code == 302 and reverse("portal:login") in response["Location"]


@pytest.mark.django_db
def test_staff_without_member_is_refused_portal_pages(client, marketer):
    client.force_login(marketer)
    assert client.get(reverse("portal:home")).status_code == 403


@pytest.mark.django_db
def test_profile_edit_saves_through_service(client):
    member = MemberFactory(password=PW)
    client.force_login(member.user)
    response = client.post(
        reverse("portal:profile"),
        {
            "email": member.email,
            "first_name": "Changed",
            "last_name": "Name",
            "phone": "",
            "birth_date": "1990-02-03",
            "country": "be",
            "city": "Gent",
            "preferred_channel": "email",
            "locale": "nl",
        },
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert (member.first_name, member.country, member.city) == ("Changed", "BE", "Gent")
    assert str(member.birth_date) == "1990-02-03"


@pytest.mark.django_db
def test_profile_edit_rejects_bad_country(client):
    member = MemberFactory(password=PW)
    client.force_login(member.user)
    response = client.post(
        reverse("portal:profile"),
        {
            "email": member.email,
            "first_name": "A",
            "last_name": "B",
            "country": "Belgium",
            "preferred_channel": "email",
            "locale": "en",
        },
    )
    assert response.status_code == 200 and "two-letter" in response.content.decode()


@pytest.mark.django_db
def test_consent_toggle(client):
    member = MemberFactory(password=PW)
    client.force_login(member.user)
    client.post(reverse("portal:consent"), {"marketing_consent": "on"})
    member.refresh_from_db()
    assert member.marketing_consent
    client.post(reverse("portal:consent"), {})
    member.refresh_from_db()
    assert not member.marketing_consent


@pytest.mark.django_db
def test_export_downloads_only_own_data(client):
    me = MemberFactory(email="me@example.com", password=PW)
    MemberFactory(email="other@example.com")
    client.force_login(me.user)
    response = client.get(reverse("portal:export"))
    assert response["Content-Disposition"].startswith("attachment")
    data = json.loads(response.content)
    assert data["profile"]["email"] == "me@example.com"
    assert "other@example.com" not in response.content.decode()


@pytest.mark.django_db
def test_close_account_needs_password_then_anonymises(client):
    member = MemberFactory(password=PW)
    client.force_login(member.user)
    wrong = client.post(reverse("portal:close"), {"password": "nope", "confirm": "on"})
    assert "not correct" in wrong.content.decode()
    client.post(reverse("portal:close"), {"password": PW, "confirm": "on"})
    member.refresh_from_db()
    assert member.status == MemberStatus.CLOSED and member.email is None
    assert client.get(reverse("portal:home")).status_code == 302  # logged out


@pytest.mark.django_db
def test_password_reset_lets_a_till_enrolled_member_claim_the_account(client):
    member = MemberFactory(email="till@example.com", channel="pos")
    assert not member.user.has_usable_password()
    client.post(reverse("portal:password_reset"), {"email": "till@example.com"})
    assert len(mail.outbox) == 1
    link = next(line for line in mail.outbox[0].body.splitlines() if "/password-reset/" in line)
    path = link.split("testserver", 1)[1]
    form_page = client.get(path, follow=True)
    response = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": PW, "new_password2": PW},
    )
    assert response.status_code == 302
    member.user.refresh_from_db()
    assert member.user.check_password(PW)
