from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from feedback.models import FollowUp, InvitationStatus, QuestionKind, SurveyResponse
from members.services import create_api_key
from rewards.models import PointsAccount
from tests.feedback.conftest import nps_survey, question, sent_invitation
from tests.feedback.factories import MemberFactory, QuestionFactory, TouchpointFactory

pytestmark = pytest.mark.django_db


def url(survey) -> str:
    return f"/api/v1/surveys/{survey.pk}/responses/"


@pytest.fixture
def kiosk_survey():
    survey = nps_survey(open_to_all=True, points=20)
    QuestionFactory(
        survey=survey,
        kind=QuestionKind.SINGLE_CHOICE,
        options="Price\nStaff",
        required=False,
        order=3,
    )
    return survey


def test_kiosk_answer_is_created_with_points_and_dimensions(api, kiosk_survey):
    member = MemberFactory(external_id="crm-7")
    store = TouchpointFactory(slug="store-kiosk", channel="store")
    nps = question(kiosk_survey, QuestionKind.NPS)

    answer = api.post(
        url(kiosk_survey),
        {"external_id": "crm-7", "answers": {str(nps.pk): 3}, "touchpoint": "store-kiosk"},
        format="json",
    )

    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["member_id"] == member.pk
    assert body["points_awarded"] == 20
    assert body["balance"] == 20
    assert body["follow_up"] is True
    response = SurveyResponse.objects.get(pk=body["response_id"])
    assert response.answered_via == "api"
    assert response.touchpoint == store
    assert response.channel == "store"
    assert FollowUp.objects.filter(response=response).exists()
    assert PointsAccount.objects.get(member=member).balance == 20


def test_bad_answers_give_400_with_errors_per_question(api, kiosk_survey):
    member = MemberFactory()
    nps = question(kiosk_survey, QuestionKind.NPS)
    choice = question(kiosk_survey, QuestionKind.SINGLE_CHOICE)

    answer = api.post(
        url(kiosk_survey),
        {"member_id": member.pk, "answers": {str(nps.pk): 12, str(choice.pk): "Parking"}},
        format="json",
    )

    assert answer.status_code == 400
    errors = answer.json()["answers"]
    assert errors[str(nps.pk)] == ["Give a whole number from 0 to 10."]
    assert "Choose one of: Price, Staff." in errors[str(choice.pk)][0]
    assert not SurveyResponse.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"answers": {}}, "member_id"),
        ({"member_id": 999999, "answers": {}}, "member_id"),
        ({"member_number": "0000000000", "answers": {}}, "member_number"),
        ({"member_id": "MEMBER"}, "answers"),
        ({"member_id": "MEMBER", "answers": [1, 2]}, "answers"),
        ({"member_id": "MEMBER", "answers": {}, "touchpoint": "nowhere"}, "touchpoint"),
        ({"member_id": "MEMBER", "answers": {}, "channel": "fax"}, "channel"),
    ],
)
def test_bad_requests_give_400_field_errors(api, kiosk_survey, payload, field):
    member = MemberFactory()
    payload = {k: (member.pk if v == "MEMBER" else v) for k, v in payload.items()}
    if payload.get("answers") == {}:
        payload["answers"] = {str(question(kiosk_survey, QuestionKind.NPS).pk): 9}
    answer = api.post(url(kiosk_survey), payload, format="json")
    assert answer.status_code == 400, answer.json()
    assert field in answer.json()


def test_answering_twice_gives_409_already_answered(api, kiosk_survey):
    member = MemberFactory()
    payload = {
        "member_number": member.member_number,
        "answers": {str(question(kiosk_survey, QuestionKind.NPS).pk): 9},
    }
    assert api.post(url(kiosk_survey), payload, format="json").status_code == 201

    again = api.post(url(kiosk_survey), payload, format="json")

    assert again.status_code == 409
    assert again.json()["code"] == "already_answered"
    assert PointsAccount.objects.get(member=member).balance == 20


def test_api_answer_completes_the_members_open_invitation(api):
    survey = nps_survey(points=5)
    member = MemberFactory()
    invitation = sent_invitation(survey, member, expires_at=timezone.now() + timedelta(days=3))
    payload = {"member_id": member.pk, "answers": {str(question(survey, QuestionKind.NPS).pk): 9}}

    assert api.post(url(survey), payload, format="json").status_code == 201
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.ANSWERED
    other = MemberFactory()
    refused = api.post(url(survey), {**payload, "member_id": other.pk}, format="json")
    assert refused.status_code == 409
    assert refused.json()["code"] == "not_invited"


def test_unknown_survey_is_404(api):
    assert api.post("/api/v1/surveys/999999/responses/", {}, format="json").status_code == 404


def test_api_needs_a_key_with_the_permission(kiosk_survey):
    member = MemberFactory()
    payload = {
        "member_id": member.pk,
        "answers": {str(question(kiosk_survey, QuestionKind.NPS).pk): 9},
    }
    anonymous = APIClient().post(url(kiosk_survey), payload, format="json")
    assert anonymous.status_code in (401, 403)

    nobody = get_user_model().objects.create_user(username="no-rights")
    _, raw = create_api_key(user=nobody, name="no rights")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert client.post(url(kiosk_survey), payload, format="json").status_code == 403

    client.credentials(HTTP_AUTHORIZATION="Api-Key nonsense.key")
    assert client.post(url(kiosk_survey), payload, format="json").status_code in (401, 403)
    assert not SurveyResponse.objects.exists()


def test_surveys_are_listed_with_their_questions(api, kiosk_survey):
    answer = api.get(f"/api/v1/surveys/{kiosk_survey.pk}/")
    assert answer.status_code == 200
    questions = answer.json()["questions"]
    assert [q["kind"] for q in questions] == ["nps", "text", "single_choice"]
    assert questions[0]["scale"] == [0, 10]
    assert questions[2]["options"] == ["Price", "Staff"]
