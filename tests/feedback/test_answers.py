from datetime import timedelta

import pytest
from django.utils import timezone

from feedback import services
from feedback.exceptions import AlreadyAnswered, InvalidAnswers, InvitationExpired, NotInvited
from feedback.models import (
    AnsweredVia,
    FollowUp,
    InvitationStatus,
    QuestionKind,
    SurveyResponse,
)
from journeys.models import CustomerEvent
from rewards.models import PointsAccount, PointsTransaction
from tests.feedback.conftest import csat_survey, nps_survey, question, sent_invitation
from tests.feedback.factories import MemberFactory, QuestionFactory, SurveyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def every_kind():
    survey = SurveyFactory(kind="custom", open_to_all=True)
    kinds = {
        "nps": QuestionFactory(survey=survey, kind=QuestionKind.NPS),
        "rating": QuestionFactory(survey=survey, kind=QuestionKind.RATING),
        "single": QuestionFactory(
            survey=survey, kind=QuestionKind.SINGLE_CHOICE, options="Price\nQuality\nStaff"
        ),
        "multiple": QuestionFactory(
            survey=survey, kind=QuestionKind.MULTIPLE_CHOICE, options="Web\nApp\nStore"
        ),
        "text": QuestionFactory(survey=survey, kind=QuestionKind.TEXT),
    }
    return survey, kinds


def valid(kinds) -> dict:
    return {
        str(kinds["nps"].pk): 10,
        str(kinds["rating"].pk): "4",
        str(kinds["single"].pk): "Quality",
        str(kinds["multiple"].pk): ["Store", "Web"],
        str(kinds["text"].pk): "  Friendly staff  ",
    }


def test_valid_answers_of_every_kind_are_stored(every_kind):
    survey, kinds = every_kind
    member = MemberFactory()

    result = services.submit_response(
        survey=survey, member=member, answers=valid(kinds), via=AnsweredVia.API
    )

    stored = {a.question_id: a for a in result.response.answers.all()}
    assert stored[kinds["nps"].pk].score == 10
    assert stored[kinds["rating"].pk].score == 4
    assert stored[kinds["single"].pk].choices == ["Quality"]
    assert stored[kinds["multiple"].pk].choices == ["Web", "Store"]  # in the options' order
    assert stored[kinds["text"].pk].text == "Friendly staff"
    # A custom survey's ratings count towards no score; the NPS question always does.
    assert stored[kinds["rating"].pk].metric == ""
    assert stored[kinds["nps"].pk].metric == "nps"


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("nps", 11, "from 0 to 10"),
        ("nps", -1, "from 0 to 10"),
        ("nps", 7.5, "from 0 to 10"),
        ("nps", True, "from 0 to 10"),
        ("nps", "ten", "from 0 to 10"),
        ("rating", 0, "from 1 to 5"),
        ("rating", 6, "from 1 to 5"),
        ("single", "Delivery", "Choose one of: Price, Quality, Staff"),
        ("single", ["Price", "Staff"], "Choose one of"),
        ("multiple", ["Web", "Fax"], "Unknown choice: Fax"),
        ("multiple", [1, 2], "list of options"),
        ("text", "x" * 2001, "At most 2000"),
        ("text", {"a": 1}, "Give a text"),
        ("text", "bad\x00byte", "NUL"),
        ("nps", None, "needs an answer"),
        ("single", "", "needs an answer"),
        ("multiple", [], "needs an answer"),
        ("text", "   ", "needs an answer"),
    ],
)
def test_each_kind_rejects_bad_answers_with_an_error_on_that_question(
    every_kind, kind, value, message
):
    survey, kinds = every_kind
    answers = valid(kinds)
    answers[str(kinds[kind].pk)] = value

    with pytest.raises(InvalidAnswers) as caught:
        services.submit_response(
            survey=survey, member=MemberFactory(), answers=answers, via=AnsweredVia.API
        )

    assert list(caught.value.errors) == [str(kinds[kind].pk)]
    assert message in caught.value.errors[str(kinds[kind].pk)][0]
    assert not SurveyResponse.objects.exists()


def test_optional_questions_may_be_left_out_and_unknown_questions_are_rejected(every_kind):
    survey, kinds = every_kind
    kinds["text"].required = False
    kinds["text"].save()
    answers = valid(kinds)
    del answers[str(kinds["text"].pk)]
    with pytest.raises(InvalidAnswers) as caught:
        services.submit_response(
            survey=survey,
            member=MemberFactory(),
            answers={**answers, "999999": 3},
            via=AnsweredVia.API,
        )
    assert caught.value.errors == {"999999": ["Not a question of this survey."]}

    result = services.submit_response(
        survey=survey, member=MemberFactory(), answers=answers, via=AnsweredVia.API
    )
    assert result.response.answers.count() == 4


def test_completion_awards_the_points_once_per_invitation():
    survey = nps_survey(points=50)
    member = MemberFactory()
    invitation = sent_invitation(survey, member)
    answers = {str(question(survey, QuestionKind.NPS).pk): 9}

    result = services.submit_response(
        survey=survey, member=member, answers=answers, via=AnsweredVia.LINK, invitation=invitation
    )
    with pytest.raises(AlreadyAnswered):
        services.submit_response(
            survey=survey,
            member=member,
            answers=answers,
            via=AnsweredVia.LINK,
            invitation=invitation,
        )
    with pytest.raises(AlreadyAnswered):
        services.submit_response(survey=survey, member=member, answers=answers, via="api")

    assert result.points == 50
    assert result.balance == 50
    assert PointsAccount.objects.get(member=member).balance == 50
    txn = PointsTransaction.objects.get(member=member)
    assert txn.idempotency_key == f"survey:invitation:{invitation.pk}"
    assert txn.source == "survey"
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.ANSWERED
    assert SurveyResponse.objects.count() == 1


def test_answer_without_invitation_uses_the_open_invitation_or_needs_an_open_survey():
    survey = nps_survey(points=10)
    member = MemberFactory()
    answers = {str(question(survey, QuestionKind.NPS).pk): 9}
    with pytest.raises(NotInvited):
        services.submit_response(survey=survey, member=member, answers=answers, via="api")

    invitation = sent_invitation(survey, member)
    result = services.submit_response(survey=survey, member=member, answers=answers, via="api")
    assert result.response.invitation == invitation

    open_survey = nps_survey(open_to_all=True, points=5)
    open_answers = {str(question(open_survey, QuestionKind.NPS).pk): 8}
    services.submit_response(survey=open_survey, member=member, answers=open_answers, via="api")
    with pytest.raises(AlreadyAnswered):
        services.submit_response(survey=open_survey, member=member, answers=open_answers, via="api")
    assert PointsAccount.objects.get(member=member).balance == 15


def test_expired_invitation_is_refused():
    survey = nps_survey()
    member = MemberFactory()
    invitation = sent_invitation(survey, member, expires_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(InvitationExpired):
        services.submit_response(
            survey=survey,
            member=member,
            answers={str(question(survey, QuestionKind.NPS).pk): 9},
            via=AnsweredVia.LINK,
            invitation=invitation,
        )


@pytest.mark.parametrize(
    ("make", "score", "follow_up"),
    [
        (nps_survey, 0, True),
        (nps_survey, 6, True),
        (nps_survey, 7, False),
        (nps_survey, 10, False),
        (csat_survey, 1, True),
        (csat_survey, 2, True),
        (csat_survey, 3, False),
        (csat_survey, 5, False),
    ],
)
def test_follow_up_is_opened_for_detractors_only(make, score, follow_up):
    survey = make(open_to_all=True)
    scored = survey.questions.get(kind__in=[QuestionKind.NPS, QuestionKind.RATING])

    result = services.submit_response(
        survey=survey, member=MemberFactory(), answers={str(scored.pk): score}, via="api"
    )

    assert FollowUp.objects.exists() is follow_up
    if follow_up:
        row = FollowUp.objects.get()
        assert row.response == result.response
        assert row.status == "open"
        assert str(score) in row.reason
        assert row.due_at == result.response.submitted_at + timedelta(days=2)


def test_low_rating_in_a_ces_survey_opens_no_follow_up():
    survey = SurveyFactory(kind="ces", open_to_all=True)
    rating = QuestionFactory(survey=survey, kind=QuestionKind.RATING)
    services.submit_response(
        survey=survey, member=MemberFactory(), answers={str(rating.pk): 1}, via="api"
    )
    assert not FollowUp.objects.exists()


def test_completion_is_recorded_as_a_survey_completed_journey_event():
    survey = nps_survey(open_to_all=True)
    member = MemberFactory()
    result = services.submit_response(
        survey=survey,
        member=member,
        answers={str(question(survey, QuestionKind.NPS).pk): 9},
        via=AnsweredVia.PORTAL,
    )
    event = CustomerEvent.objects.get(member=member, event_type="survey_completed")
    assert event.properties == {
        "survey_id": survey.pk,
        "response_id": result.response.pk,
        "score": 9,
    }
    assert event.source == "portal"


@pytest.mark.django_db(transaction=True)
def test_one_invitation_answered_twice_at_once_awards_the_points_once():
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    survey = nps_survey(points=40)
    member = MemberFactory()
    invitation = sent_invitation(survey, member)
    answers = {str(question(survey, QuestionKind.NPS).pk): 9}

    def answer(_):
        try:
            services.submit_response(
                survey=survey,
                member=member,
                answers=answers,
                via=AnsweredVia.LINK,
                invitation=invitation,
            )
            return "ok"
        except AlreadyAnswered:
            return "already"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = sorted(pool.map(answer, range(4)))

    assert outcomes == ["already", "already", "already", "ok"]
    assert SurveyResponse.objects.count() == 1
    assert PointsAccount.objects.get(member=member).balance == 40
    assert PointsTransaction.objects.filter(member=member, source="survey").count() == 1
