from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.models import Campaign, CampaignSend, CampaignStatus, Group
from campaigns.services import group_for
from journeys.services import ingest_event, seed_default_stages
from tests.campaigns.factories import SegmentFactory, add_to_segment
from tests.conftest import PASSWORD, make_staff
from tests.members.factories import MemberFactory
from tests.rewards.factories import EarningRuleFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def admin_log_in(page, live_server, username):
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()


def test_marketer_launches_a_campaign_member_sees_the_offer_results_compare_groups(
    live_server, page, console_errors
):
    seed_default_stages()  # the transactional flush removed the migrated stages
    make_staff("marketer", "Marketer")
    EarningRuleFactory(name="Points per euro", points_per_unit=Decimal("1"))
    members = [
        MemberFactory(
            email=f"shopper{n}@example.com",
            first_name=f"Shopper{n}",
            password=PASSWORD,
            marketing_consent=True,
        )
        for n in range(16)
    ]
    segment = SegmentFactory(name="Lapsing regulars", slug="lapsing-regulars")
    add_to_segment(segment, members)
    mail.outbox = []

    # The marketer builds the campaign in the admin.
    admin_log_in(page, live_server, "marketer")
    page.locator("#campaigns-campaign").get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="Add campaign").click()
    page.get_by_label("Name").fill("Come back for double points")
    page.get_by_role("combobox", name="Segment").select_option(label="Lapsing regulars")
    page.get_by_role("combobox", name="Schedule").select_option(label="Once, at a time")
    start = timezone.localtime(timezone.now() - timedelta(hours=1))
    end = start + timedelta(days=14)
    page.locator("#id_starts_at_0").fill(start.strftime("%Y-%m-%d"))
    page.locator("#id_starts_at_1").fill(start.strftime("%H:%M:%S"))
    page.locator("#id_ends_at_0").fill(end.strftime("%Y-%m-%d"))
    page.locator("#id_ends_at_1").fill(end.strftime("%H:%M:%S"))
    page.get_by_label("Control share").fill("0.5")
    page.get_by_role("combobox", name="Offer kind").select_option(
        label="Points multiplier during the campaign"
    )
    page.get_by_label("Offer title").fill("Double points for two weeks")
    page.get_by_label("Multiplier:", exact=True).fill("2")
    page.get_by_label("Subject template").fill("{{ first_name }}, double {{ points_name }} await")
    page.get_by_label("Body template").fill(
        "Hi {{ first_name }}, you have {{ points }} {{ points_name }}. "
        "Earn double until {{ offer_ends }}."
    )
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("was added successfully")).to_be_visible()

    campaign = Campaign.objects.get(name="Come back for double points")
    treated = [m for m in members if group_for(campaign, m.pk) == Group.TREATMENT]
    held_out = [m for m in members if group_for(campaign, m.pk) == Group.CONTROL]
    assert treated and held_out
    shopper = treated[0]

    # Preview the message for one member, then count the audience and launch.
    page.locator("#result_list").get_by_role("link", name="Come back for double points").click()
    page.get_by_role("link", name="Preview message").click()
    page.get_by_label("Member (number or email)").fill(shopper.email)
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview-subject")).to_have_text(
        f"{shopper.first_name}, double points await"
    )
    expect(page.get_by_test_id("preview-body")).to_contain_text(
        f"Hi {shopper.first_name}, you have 0 points."
    )
    page.get_by_role("link", name="Audience and launch").click()
    expect(page.get_by_test_id("audience-treatment")).to_have_text(str(len(treated)))
    expect(page.get_by_test_id("audience-control")).to_have_text(str(len(held_out)))
    expect(page.get_by_test_id("audience-no-consent")).to_have_text("0")
    page.get_by_role("button", name="Launch campaign").click()
    expect(page.get_by_text("Launched: the campaign is running.")).to_be_visible()

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING
    assert CampaignSend.objects.filter(campaign=campaign, status="sent").count() == len(treated)
    assert sorted(m.to[0] for m in mail.outbox) == sorted(m.email for m in treated)

    # A treated member sees the offer in the portal, and it doubles a purchase.
    page.goto(f"{live_server.url}/portal/login/")
    page.get_by_label("Email", exact=True).fill(shopper.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Offers", exact=True).click()
    expect(page.get_by_role("heading", name="Offers for you")).to_be_visible()
    offer = page.get_by_test_id("offer")
    expect(offer).to_contain_text("Double points for two weeks")
    expect(offer).to_contain_text("×2 points on every purchase")

    now = timezone.now()
    for number, member in enumerate(treated[:3] + held_out[:1]):
        result = ingest_event(
            member=member,
            event_type="purchase",
            occurred_at=now,
            idempotency_key=f"order-{number}",
            amount=Decimal("25.00"),
            order_id=f"order-{number}",
        )
        assert result.award.points == (50 if member in treated else 25)

    # The results page shows treatment against control.
    admin_log_in(page, live_server, "marketer")
    page.goto(f"{live_server.url}/analytics/campaigns/")
    page.get_by_role("link", name="Come back for double points").click()
    expect(page.get_by_role("heading", name="Come back for double points")).to_be_visible()
    treatment_row = page.get_by_test_id("group-treatment")
    control_row = page.get_by_test_id("group-control")
    expect(treatment_row).to_contain_text(str(len(treated)))
    expect(treatment_row).to_contain_text("75.00 EUR")
    expect(control_row).to_contain_text("25.00 EUR")
    expect(page.get_by_test_id("points-cost")).to_contain_text("75")
    expect(page.get_by_test_id("uplift")).to_contain_text("95% CI")
    assert console_errors == []
