import pytest
from rest_framework.test import APIClient

from .factories import MemberFactory

URL = "/api/v1/members/"


@pytest.mark.django_db
def test_enroll_with_api_key_answers_201_then_200_with_same_id(api):
    first = api.post(URL, {"email": "Shop@Example.com", "first_name": "Sam"}, format="json")
    assert first.status_code == 201, first.content
    assert first.json()["email"] == "shop@example.com"
    assert first.json()["enrollment_channel"] == "api"
    again = api.post(URL, {"email": "shop@example.com"}, format="json")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


@pytest.mark.django_db
def test_enroll_by_external_id_is_idempotent(api):
    first = api.post(URL, {"external_id": "CRM-77"}, format="json")
    again = api.post(URL, {"external_id": "CRM-77", "first_name": "Ignored"}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]


@pytest.mark.django_db
def test_bad_email_is_400_naming_the_field(api):
    response = api.post(URL, {"email": "not-an-email"}, format="json")
    assert response.status_code == 400
    assert "email" in response.json()


@pytest.mark.django_db
def test_neither_email_nor_external_id_is_400(api):
    response = api.post(URL, {"first_name": "Nobody"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) >= {"email", "external_id"}


@pytest.mark.django_db
def test_conflicting_identity_is_409(api):
    MemberFactory(email="x@example.com")
    MemberFactory(email=None, external_id="CRM-X")
    response = api.post(URL, {"email": "x@example.com", "external_id": "CRM-X"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "identity_conflict"


@pytest.mark.django_db
def test_no_key_is_401():
    response = APIClient().get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"


@pytest.mark.django_db
def test_wrong_or_revoked_key_is_401(api_key, integration_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}x")
    assert client.get(URL).status_code == 401
    integration_user.api_keys.update(revoked=True)
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    assert client.get(URL).status_code == 401


@pytest.mark.django_db
def test_key_acts_with_its_users_permissions(db):
    from django.contrib.auth import get_user_model

    from members.services import create_api_key

    user = get_user_model().objects.create_user(username="no-rights")
    _, raw = create_api_key(user=user, name="k")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"email": "a@example.com"}, format="json").status_code == 403


@pytest.mark.django_db
def test_member_session_cannot_list_members():
    member = MemberFactory(password="pw-123-long-enough")
    client = APIClient()
    client.force_login(member.user)
    assert client.get(URL).status_code == 403
    other = MemberFactory()
    assert client.get(f"{URL}{other.pk}/").status_code == 403


@pytest.mark.django_db
def test_lookup_by_email_and_external_id(api):
    m1 = MemberFactory(email="find.me@example.com")
    MemberFactory(email=None, external_id="CRM-5")
    MemberFactory()
    by_email = api.get(URL, {"email": "FIND.ME@example.com"}).json()
    assert [r["id"] for r in by_email["results"]] == [m1.pk]
    by_ext = api.get(URL, {"external_id": "CRM-5"}).json()
    assert by_ext["count"] == 1 and by_ext["results"][0]["external_id"] == "CRM-5"


@pytest.mark.django_db
def test_list_is_paginated(api):
    for _ in range(3):
        MemberFactory()
    page = api.get(URL, {"page_size": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]


@pytest.mark.django_db
def test_patch_updates_profile_consent_and_status(api):
    member = MemberFactory()
    response = api.patch(
        f"{URL}{member.pk}/",
        {"city": "Leuven", "marketing_consent": True, "status": "suspended"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["city"] == "Leuven" and body["marketing_consent"] is True
    assert body["status"] == "suspended" and body["consent_changed_at"]


@pytest.mark.django_db
def test_patch_bad_birth_date_is_400(api):
    member = MemberFactory()
    response = api.patch(f"{URL}{member.pk}/", {"birth_date": "31-31-2020"}, format="json")
    assert response.status_code == 400 and "birth_date" in response.json()


@pytest.mark.django_db
def test_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/members/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()
