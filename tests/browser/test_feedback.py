import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from feedback import tasks
from feedback.models import FollowUp, QuestionKind, Survey
from journeys.services import ingest_event, seed_default_stages
from members.roles import SUPPORT
from rewards.models import PointsAccount
from tests.conftest import PASSWORD, make_staff
from tests.journeys.factories import TouchpointFactory
from tests.members.factories import MemberFactory
from tests.rewards.factories import EarningRuleFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def nps_survey_after_purchases() -> Survey:
    survey = Survey.objects.create(
        name="After purchase",
        slug="after-purchase",
        kind="nps",
        title="How likely are you to recommend us?",
        trigger_event_type="purchase",
        points=50,
    )
    survey.questions.create(
        order=1,
        kind=QuestionKind.NPS,
        text="How likely are you to recommend us to a friend?",
        low_label="Not at all likely",
        high_label="Extremely likely",
    )
    survey.questions.create(
        order=2, kind=QuestionKind.TEXT, text="What is the main reason?", required=False
    )
    return survey


def test_member_answers_from_the_email_link_and_support_resolves_the_follow_up(
    live_server, page, console_errors, settings
):
    seed_default_stages()  # the transactional flush removed the migrated stages
    settings.PORTAL_BASE_URL = live_server.url
    nps_survey_after_purchases()
    EarningRuleFactory(name="Points per euro", points_per_unit=Decimal("1"))
    checkout = TouchpointFactory(name="Website checkout", slug="web-checkout", channel="web")
    member = MemberFactory(email="pat@example.com", first_name="Pat")
    ingest_event(
        member=member,
        event_type="purchase",
        occurred_at=timezone.now(),
        idempotency_key="order-1",
        amount=Decimal("30.00"),
        touchpoint=checkout,
    )
    mail.outbox.clear()

    # The job runs a few minutes later (events settle for two minutes first).
    tasks.send_survey_invitations.delay(as_of=(timezone.now() + timedelta(minutes=5)).isoformat())

    (email,) = mail.outbox
    assert email.to == ["pat@example.com"]
    assert "your purchase at Website checkout" in email.body
    link = re.search(rf"{re.escape(live_server.url)}/s/[\w-]+/", email.body).group(0)

    page.goto(link)
    expect(page.get_by_role("heading", name="How likely are you to recommend us?")).to_be_visible()
    expect(page.get_by_text("Hi Pat")).to_be_visible()
    expect(
        page.get_by_text("This survey is about your purchase at Website checkout")
    ).to_be_visible()
    page.get_by_role("button", name="Send my answers").click()
    expect(page.get_by_text("This question needs an answer.")).to_be_visible()

    page.get_by_label("3", exact=True).check()
    page.get_by_label("What is the main reason?").fill("The parcel arrived late.")
    page.get_by_role("button", name="Send my answers").click()

    expect(page.get_by_role("status")).to_contain_text(
        "You earned 50 points; your balance is now 80 points."
    )
    expect(page.get_by_text("This survey has been answered")).to_be_visible()
    assert PointsAccount.objects.get(member=member).balance == 80  # 30 for the order

    # The link works once.
    page.goto(link)
    expect(page.get_by_text("This survey has been answered")).to_be_visible()
    expect(page.get_by_role("button", name="Send my answers")).to_have_count(0)

    make_staff("agent", SUPPORT)
    page.goto(f"{live_server.url}/admin/")
    page.get_by_label("Username").fill("agent")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Follow-ups").click()
    row = page.get_by_role("row", name=re.compile("NPS 3"))
    expect(row).to_contain_text("Open")
    row.get_by_role("link", name=re.compile("NPS 3")).click()

    expect(page.get_by_text("The parcel arrived late.")).to_be_visible()
    page.get_by_label("Status").select_option(label="Resolved")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Record the outcome to resolve the follow-up.")).to_be_visible()
    page.get_by_label("Outcome").fill("Called Pat, apologised and refunded the shipping.")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.get_by_text("was changed successfully")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("NPS 3"))).to_contain_text("Resolved")
    follow_up = FollowUp.objects.get()
    assert follow_up.status == "resolved"
    assert follow_up.resolved_by.username == "agent"
    assert console_errors == [], console_errors
