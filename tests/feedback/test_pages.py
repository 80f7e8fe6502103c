import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from feedback import services
from feedback.models import (
    FollowUp,
    InvitationStatus,
    QuestionKind,
    SurveyResponse,
)
from rewards.models import PointsAccount
from tests.conftest import PASSWORD, make_staff
from tests.feedback.conftest import csat_survey, nps_survey, question, sent_invitation
from tests.feedback.factories import MemberFactory, QuestionFactory, TouchpointFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member_client(client):
    member = MemberFactory(email="pat@example.com", first_name="Pat", password=PASSWORD)
    client.force_login(member.user)
    return client, member


def test_link_opens_the_survey_without_login_once(client):
    survey = nps_survey(points=50)
    member = MemberFactory(first_name="Pat")
    invitation = sent_invitation(survey, member)
    link = f"/s/{invitation.token}/"
    nps = question(survey, QuestionKind.NPS)

    page = client.get(link)
    assert page.status_code == 200
    assert b"Hi Pat" in page.content
    assert b"50" in page.content

    missing = client.post(link, {})
    assert missing.status_code == 200
    assert b"This question needs an answer." in missing.content

    done = client.post(link, {f"q{nps.pk}": "9"}, follow=True)
    assert b"You earned 50 points" in done.content
    assert b"This survey has been answered" in done.content
    assert PointsAccount.objects.get(member=member).balance == 50

    again = client.post(link, {f"q{nps.pk}": "2"})
    assert again.status_code == 200
    assert b"This survey has been answered" in again.content
    assert SurveyResponse.objects.get().answers.get().score == 9
    assert PointsAccount.objects.get(member=member).balance == 50


def test_expired_unknown_and_unsent_links(client):
    survey = nps_survey()
    member = MemberFactory()
    expired = sent_invitation(survey, member, expires_at=timezone.now() - timedelta(seconds=1))
    page = client.get(f"/s/{expired.token}/")
    assert page.status_code == 410
    assert b"expired" in page.content
    nps = question(survey, QuestionKind.NPS)
    assert client.post(f"/s/{expired.token}/", {f"q{nps.pk}": "9"}).status_code == 410
    assert not SurveyResponse.objects.exists()

    assert client.get("/s/not-a-token/").status_code == 404
    scheduled = sent_invitation(survey, member, status=InvitationStatus.SCHEDULED, sent_at=None)
    assert client.get(f"/s/{scheduled.token}/").status_code == 404


def test_portal_lists_surveys_for_the_member_and_takes_answers(member_client):
    client, member = member_client
    survey = nps_survey(points=30)
    QuestionFactory(survey=survey, kind=QuestionKind.MULTIPLE_CHOICE, options="Web\nApp", order=3)
    sent_invitation(survey, member)
    sent_invitation(survey, MemberFactory())  # someone else's
    open_survey = csat_survey(open_to_all=True, title="Tell us about the app")
    expired_survey = nps_survey(title="Old survey")
    sent_invitation(expired_survey, member, expires_at=timezone.now() - timedelta(days=1))

    page = client.get("/portal/surveys/")
    assert page.status_code == 200
    text = page.content.decode()
    assert text.count("How likely are you to recommend us?") == 1
    assert "Tell us about the app" in text
    assert "Old survey" not in text
    assert 'href="/portal/surveys/"' in text  # the nav link

    form = client.get(f"/portal/surveys/{survey.pk}/")
    assert form.status_code == 200
    nps = question(survey, QuestionKind.NPS)
    multiple = question(survey, QuestionKind.MULTIPLE_CHOICE)
    bad = client.post(
        f"/portal/surveys/{survey.pk}/", {f"q{nps.pk}": "11", f"q{multiple.pk}": ["Web"]}
    )
    assert bad.status_code == 200
    assert b"Give a whole number from 0 to 10." in bad.content
    done = client.post(
        f"/portal/surveys/{survey.pk}/",
        {f"q{nps.pk}": "10", f"q{multiple.pk}": ["Web", "App"]},
        follow=True,
    )
    assert b"You earned 30 points" in done.content
    assert SurveyResponse.objects.get(member=member).answers.count() == 2

    rating = question(open_survey, QuestionKind.RATING)
    client.post(f"/portal/surveys/{open_survey.pk}/", {f"q{rating.pk}": "2"})
    assert FollowUp.objects.filter(member=member).count() == 1
    after = client.get("/portal/surveys/").content.decode()
    assert "No surveys are waiting for you" in after
    assert client.get(f"/portal/surveys/{survey.pk}/").status_code == 302


def test_results_page_is_for_analysts_and_marketers(client, analyst, support):
    assert client.get("/feedback/results/").status_code == 302
    client.force_login(support)
    assert client.get("/feedback/results/").status_code == 403
    client.force_login(analyst)
    assert client.get("/feedback/results/").status_code == 200


def test_results_show_scores_by_dimension_terms_and_export_csv(client, analyst):
    survey = nps_survey(open_to_all=True, name="After purchase")
    nps = question(survey, QuestionKind.NPS)
    text = question(survey, QuestionKind.TEXT)
    kiosk = TouchpointFactory(name="Store kiosk", channel="store")
    for score, words in [(10, "Friendly staff"), (9, "Staff were great"), (3, "Slow delivery")]:
        services.submit_response(
            survey=survey,
            member=MemberFactory(),
            answers={str(nps.pk): score, str(text.pk): words},
            via="api",
            touchpoint=kiosk,
        )
    sent_invitation(survey, MemberFactory())
    client.force_login(analyst)

    page = client.get("/feedback/results/")

    content = page.content.decode()
    assert page.context["summary"].nps == Decimal("33.3")  # 2 promoters, 1 detractor of 3
    assert page.context["summary"].responses == 3
    assert page.context["summary"].invitations == 1
    assert "Store kiosk" in content
    assert ("staff", 2) in page.context["terms"]
    assert "Slow delivery" in content

    export = client.get("/feedback/results/?format=csv")
    assert export["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    overall = next(r for r in rows if r["dimension"] == "all")
    assert overall["nps"] == "33.3"
    assert overall["responses"] == "3"
    touchpoint = next(r for r in rows if r["dimension"] == "touchpoint")
    assert touchpoint["value"] == "Store kiosk"
    assert touchpoint["nps_answers"] == "3"
    assert any(r["dimension"] == "channel" and r["value"] == "Store" for r in rows)


def test_results_page_query_count_does_not_grow_with_responses(
    client, analyst, django_assert_max_num_queries
):
    survey = nps_survey(open_to_all=True)
    nps = question(survey, QuestionKind.NPS)
    for score in range(11):
        services.submit_response(
            survey=survey, member=MemberFactory(), answers={str(nps.pk): score}, via="api"
        )
    client.force_login(analyst)
    with django_assert_max_num_queries(35):
        assert client.get("/feedback/results/").status_code == 200


def test_journey_map_shows_satisfaction_beside_touchpoints(client, analyst):
    survey = nps_survey(open_to_all=True)
    nps = question(survey, QuestionKind.NPS)
    checkout = TouchpointFactory(name="Web checkout", channel="web")
    for score in (10, 10, 2):
        services.submit_response(
            survey=survey,
            member=MemberFactory(),
            answers={str(nps.pk): score},
            via="api",
            touchpoint=checkout,
        )
    client.force_login(analyst)

    page = client.get("/journeys/map/")

    assert "NPS +33 (n=3)" in page.content.decode()


def test_support_resolves_a_follow_up_in_the_admin_with_an_outcome(client):
    survey = nps_survey(open_to_all=True)
    member = MemberFactory()
    services.submit_response(
        survey=survey,
        member=member,
        answers={str(question(survey, QuestionKind.NPS).pk): 2},
        via="api",
        now=timezone.now() - timedelta(days=5),
    )
    follow_up = FollowUp.objects.get()
    agent = make_staff("agent", "Support")
    client.force_login(agent)

    listing = client.get("/admin/feedback/followup/")
    assert listing.status_code == 200
    assert b'class="overdue"' in listing.content

    change = f"/admin/feedback/followup/{follow_up.pk}/change/"
    form = {
        "status": "resolved",
        "assignee": agent.pk,
        "due_at_0": "2030-01-01",
        "due_at_1": "10:00:00",
        "notes": "Called",
        "outcome": "",
    }
    refused = client.post(change, form)
    assert refused.status_code == 200
    assert b"Record the outcome to resolve the follow-up." in refused.content
    follow_up.refresh_from_db()
    assert follow_up.status == "open"

    done = client.post(change, {**form, "outcome": "Refunded the delivery"})
    assert done.status_code == 302
    follow_up.refresh_from_db()
    assert follow_up.status == "resolved"
    assert follow_up.outcome == "Refunded the delivery"
    assert follow_up.resolved_by == agent
    assert follow_up.resolved_at is not None
    assert b'class="overdue"' not in client.get("/admin/feedback/followup/").content


def test_marketer_creates_a_survey_with_questions_in_the_admin(client, marketer):
    client.force_login(marketer)
    base = {
        "name": "Store visit",
        "slug": "store-visit",
        "kind": "nps",
        "title": "How was your visit?",
        "points": "10",
        "active": "on",
        "trigger_event_type": "purchase",
        "delay_hours": "2",
        "cooldown_days": "30",
        "invitation_valid_days": "7",
        "questions-TOTAL_FORMS": "1",
        "questions-INITIAL_FORMS": "0",
        "questions-MIN_NUM_FORMS": "0",
        "questions-MAX_NUM_FORMS": "1000",
        "questions-0-order": "1",
        "questions-0-text": "Which department?",
        "questions-0-kind": "single_choice",
        "questions-0-required": "on",
        "questions-0-options": "Shoes",
    }
    refused = client.post("/admin/feedback/survey/add/", base)
    assert refused.status_code == 200
    assert b"Give at least two options" in refused.content
    refused = client.post(
        "/admin/feedback/survey/add/",
        {**base, "questions-0-options": "Shoes\nBags", "trigger_event_type": "teleport"},
    )
    assert b"An NPS survey needs an NPS question" in refused.content
    assert b"Unknown event type" in refused.content

    created = client.post(
        "/admin/feedback/survey/add/",
        {**base, "questions-0-kind": "nps", "questions-0-options": ""},
    )
    assert created.status_code == 302
