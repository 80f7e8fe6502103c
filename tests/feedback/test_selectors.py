from datetime import UTC, datetime
from decimal import Decimal

import pytest

from feedback import selectors, services
from feedback.models import AnsweredVia, QuestionKind, SurveyKind
from tests.feedback.conftest import csat_survey, nps_survey, question, sent_invitation
from tests.feedback.factories import MemberFactory, QuestionFactory, SurveyFactory

pytestmark = pytest.mark.django_db

JAN = datetime(2026, 1, 10, 12, tzinfo=UTC)
FEB = datetime(2026, 2, 10, 12, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)


def answer_all(survey, kind, scores, at):
    q = question(survey, kind)
    for score in scores:
        services.submit_response(
            survey=survey,
            member=MemberFactory(),
            answers={str(q.pk): score},
            via=AnsweredVia.API,
            now=at,
        )


def test_satisfaction_summary_on_a_hand_checked_set():
    nps = nps_survey(open_to_all=True)
    csat = csat_survey(open_to_all=True)
    ces = SurveyFactory(kind=SurveyKind.CES, open_to_all=True)
    QuestionFactory(survey=ces, kind=QuestionKind.RATING)
    custom = SurveyFactory(kind=SurveyKind.CUSTOM, open_to_all=True)
    QuestionFactory(survey=custom, kind=QuestionKind.RATING)

    # 10 NPS answers in February: promoters 10, 9, 9, 9, 10 (5); detractors 6, 2 (2);
    # passives 8, 7, 7. NPS = 50% - 20% = 30.
    answer_all(nps, QuestionKind.NPS, [10, 9, 9, 9, 8, 7, 7, 6, 2, 10], FEB)
    # CSAT: 3 of 6 are 4 or 5 -> 50%.
    answer_all(csat, QuestionKind.RATING, [5, 4, 3, 2, 1, 5], FEB)
    # CES: mean of 2, 3, 5 = 3.33.
    answer_all(ces, QuestionKind.RATING, [2, 3, 5], FEB)
    # A rating in a custom survey counts towards nothing; January is outside the window.
    answer_all(custom, QuestionKind.RATING, [1], FEB)
    answer_all(nps, QuestionKind.NPS, [0, 0, 0], JAN)

    summary = selectors.satisfaction_summary(start=datetime(2026, 2, 1, tzinfo=UTC), end=MAR)

    assert summary == {
        "nps": Decimal("30.0"),
        "csat": Decimal("50.0"),
        "ces": Decimal("3.33"),
        "responses": 20,
    }
    everything = selectors.satisfaction_summary(start=None, end=MAR)
    # 13 NPS answers: promoters 5, detractors 5 -> 0.
    assert everything["nps"] == Decimal("0.0")
    assert everything["responses"] == 23


def test_satisfaction_summary_is_none_without_answers_and_end_is_exclusive():
    nps = nps_survey(open_to_all=True)
    answer_all(nps, QuestionKind.NPS, [10], MAR)

    assert selectors.satisfaction_summary(start=None, end=MAR) == {
        "nps": None,
        "csat": None,
        "ces": None,
        "responses": 0,
    }
    assert selectors.satisfaction_summary(start=MAR, end=datetime(2026, 4, 1, tzinfo=UTC))[
        "nps"
    ] == Decimal("100.0")


def test_nps_of_all_detractors_is_minus_100():
    nps = nps_survey(open_to_all=True)
    answer_all(nps, QuestionKind.NPS, [0, 6], FEB)
    assert selectors.satisfaction_summary(start=None, end=MAR)["nps"] == Decimal("-100.0")


def test_breakdown_by_month_and_tier_and_response_rate():
    nps = nps_survey(open_to_all=True)
    answer_all(nps, QuestionKind.NPS, [10, 0], JAN)
    answer_all(nps, QuestionKind.NPS, [9], FEB)
    zone = __import__("zoneinfo").ZoneInfo("Europe/Amsterdam")

    months = selectors.breakdown("month", selectors.ResultFilters(), zone)

    assert [(r.label, r.responses, r.nps) for r in months] == [
        ("2026-01", 2, Decimal("0.0")),
        ("2026-02", 1, Decimal("100.0")),
    ]
    by_survey = selectors.breakdown("survey", selectors.ResultFilters(), zone)
    assert by_survey[0].label == nps.name
    assert by_survey[0].response_rate is None  # no invitations: answered without one


def test_top_terms_skip_stop_words_and_count_each_answer_once():
    terms = selectors.top_terms(
        [
            "The delivery was slow, slow, slow.",
            "Delivery took too long",
            "Friendly staff and fast delivery!",
        ]
    )
    assert terms[0] == ("delivery", 3)
    assert ("slow", 1) in terms
    assert all(word not in dict(terms) for word in ("the", "was", "and", "too"))


def test_result_filters_narrow_every_figure_to_the_period_and_survey():
    nps = nps_survey(open_to_all=True)
    other = nps_survey(open_to_all=True)
    for survey, score, text, at in [
        (nps, 10, "Friendly staff", JAN),
        (nps, 0, "Slow delivery", FEB),
        (other, 9, "Slow but great prices", FEB),
    ]:
        services.submit_response(
            survey=survey,
            member=MemberFactory(),
            answers={
                str(question(survey, QuestionKind.NPS).pk): score,
                str(question(survey, QuestionKind.TEXT).pk): text,
            },
            via=AnsweredVia.API,
            now=at,
        )
    sent_invitation(nps, MemberFactory(), sent_at=JAN)
    sent_invitation(nps, MemberFactory(), sent_at=FEB)
    sent_invitation(other, MemberFactory(), sent_at=FEB)
    february = selectors.ResultFilters(start=datetime(2026, 2, 1, tzinfo=UTC), end=MAR)
    filters = selectors.ResultFilters(start=february.start, end=MAR, survey_id=nps.pk)

    found = selectors.overall(filters)

    assert (found.responses, found.invitations, found.nps) == (1, 1, Decimal("-100.0"))
    assert [a.text for a in selectors.text_answers(filters)] == ["Slow delivery"]
    assert selectors.text_terms(filters) == [("delivery", 1), ("slow", 1)]
    assert selectors.overall(february).responses == 2
    assert ("slow", 2) in selectors.text_terms(february)
    assert selectors.overall(selectors.ResultFilters()).invitations == 3
