"""The marketer's admin screens: build with validation, preview, send a test, count, launch."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from campaigns.models import Campaign, CampaignSend, CampaignStatus
from tests.campaigns.factories import CampaignFactory, SegmentFactory, add_to_segment

pytestmark = pytest.mark.django_db


def form_data(target, **overrides):
    start = timezone.localtime(timezone.now() - timedelta(hours=1))
    end = start + timedelta(days=7)
    data = {
        "name": "Spring double points",
        "description": "",
        "segment": target.pk,
        "channel": "email",
        "schedule": "once",
        "send_at_0": "",
        "send_at_1": "",
        "trigger_stage": "",
        "starts_at_0": start.strftime("%Y-%m-%d"),
        "starts_at_1": start.strftime("%H:%M:%S"),
        "ends_at_0": end.strftime("%Y-%m-%d"),
        "ends_at_1": end.strftime("%H:%M:%S"),
        "control_share": "0.1",
        "offer_kind": "multiplier",
        "offer_title": "Double points",
        "offer_description": "",
        "multiplier": "2",
        "multiplier_event_type": "purchase",
        "bonus_points": "",
        "reward": "",
        "points_budget": "",
        "subject_template": "Hi {{ first_name }}",
        "body_template": "You have {{ points }} {{ points_name }}.",
        "conversion_days": "14",
    }
    data.update(overrides)
    return data


def test_marketer_adds_a_campaign(client, marketer):
    segment = SegmentFactory()
    client.force_login(marketer)
    answer = client.post("/admin/campaigns/campaign/add/", form_data(segment))
    assert answer.status_code == 302, answer.context["adminform"].form.errors
    campaign = Campaign.objects.get()
    assert (campaign.status, campaign.multiplier) == (CampaignStatus.DRAFT, 2)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"body_template": "{% if points %}no end"}, "body_template", "Template error"),
        ({"body_template": "{% load static %}x"}, "body_template", "not allowed"),
        ({"subject_template": "{% debug %}"}, "subject_template", "not allowed"),
        ({"multiplier": ""}, "multiplier", "Give the multiplier"),
        ({"offer_title": ""}, "offer_title", "Give the offer a title"),
        ({"segment": ""}, "segment", "Choose the segment"),
        ({"schedule": "stage_entry"}, "trigger_stage", "Choose the stage"),
        ({"offer_kind": "none", "points_budget": "10"}, "points_budget", "points offers only"),
    ],
)
def test_admin_form_refuses_bad_campaigns(client, marketer, overrides, field, message):
    segment = SegmentFactory()
    client.force_login(marketer)
    answer = client.post("/admin/campaigns/campaign/add/", form_data(segment, **overrides))
    assert answer.status_code == 200
    errors = answer.context["adminform"].form.errors
    assert message in " ".join(errors[field])
    assert not Campaign.objects.exists()


def test_end_must_follow_start(client, marketer):
    segment = SegmentFactory()
    client.force_login(marketer)
    data = form_data(segment)
    data["ends_at_0"], data["ends_at_1"] = data["starts_at_0"], data["starts_at_1"]
    answer = client.post("/admin/campaigns/campaign/add/", data)
    assert "after the start" in " ".join(answer.context["adminform"].form.errors["ends_at"])


def test_preview_renders_for_a_member_and_sends_a_test_to_me(client, marketer, consenting):
    member = consenting(1, first_name="Ada")[0]
    campaign = CampaignFactory(subject_template="Hello {{ first_name }}")
    client.force_login(marketer)
    mail.outbox = []

    page = client.post(
        f"/admin/campaigns/campaign/{campaign.pk}/preview/",
        {"member": member.member_number, "_preview": "Preview"},
    )
    assert page.status_code == 200
    assert page.context["rendered"].subject == "Hello Ada"
    assert mail.outbox == []

    client.post(
        f"/admin/campaigns/campaign/{campaign.pk}/preview/",
        {"member": member.email, "_send_test": "Send me a test"},
    )
    assert [(m.subject, m.to) for m in mail.outbox] == [("[Test] Hello Ada", [marketer.email])]
    assert not CampaignSend.objects.exists()


def test_preview_reports_an_unknown_member(client, marketer):
    campaign = CampaignFactory()
    client.force_login(marketer)
    page = client.post(f"/admin/campaigns/campaign/{campaign.pk}/preview/", {"member": "nobody"})
    assert "No member has this number or email" in page.content.decode()


def test_launch_page_counts_the_audience_and_launches(
    client, marketer, consenting, django_capture_on_commit_callbacks
):
    members = consenting(6)
    campaign = CampaignFactory(control_share=0)
    add_to_segment(campaign.segment, members)
    client.force_login(marketer)
    url = f"/admin/campaigns/campaign/{campaign.pk}/launch/"

    page = client.get(url)
    assert page.context["audience"].treatment == 6
    mail.outbox = []
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(url)

    assert answer.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING
    assert campaign.launched_by == marketer
    assert len(mail.outbox) == 6
    again = client.post(url, follow=True)
    assert "Only a draft campaign can be launched" in again.content.decode()


def test_analysts_cannot_launch(client, analyst):
    campaign = CampaignFactory()
    client.force_login(analyst)
    assert client.get(f"/admin/campaigns/campaign/{campaign.pk}/launch/").status_code == 200
    assert client.post(f"/admin/campaigns/campaign/{campaign.pk}/launch/").status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


def test_a_launched_campaign_is_read_only(client, marketer):
    campaign = CampaignFactory(status=CampaignStatus.RUNNING)
    client.force_login(marketer)
    page = client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    assert page.status_code == 200
    assert "segment" in page.context["adminform"].readonly_fields
    assert "description" not in page.context["adminform"].readonly_fields


def test_campaign_settings_open_on_their_one_row(client, marketer):
    client.force_login(marketer)
    answer = client.get("/admin/campaigns/campaignsettings/")
    assert answer.status_code == 302
    assert answer["Location"].endswith("/admin/campaigns/campaignsettings/1/change/")


def test_marketers_cancel_campaigns_from_the_list_and_analysts_cannot(client, marketer, analyst):
    campaign = CampaignFactory(status=CampaignStatus.RUNNING)
    action = {"action": "cancel_selected", "_selected_action": [campaign.pk]}

    client.force_login(analyst)
    listing = client.get("/admin/campaigns/campaign/")
    assert listing.status_code == 200
    assert "cancel_selected" not in listing.content.decode()
    client.post("/admin/campaigns/campaign/", action)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING

    client.force_login(marketer)
    client.post("/admin/campaigns/campaign/", action)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CANCELLED
