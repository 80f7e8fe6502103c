"""The unsubscribe link (no login), the member's offers page and the results pages."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.messages import unsubscribe_token
from campaigns.models import Group, SendStatus
from members.models import ConsentChange
from members.roles import SUPPORT
from rewards.selectors import program_settings
from tests.campaigns.factories import CampaignFactory, add_send
from tests.conftest import make_staff

pytestmark = pytest.mark.django_db


def test_unsubscribe_asks_first_then_withdraws_consent_without_login(client, consenting):
    member = consenting(1)[0]
    url = f"/unsubscribe/{unsubscribe_token(member.pk, 5)}/"

    page = client.get(url)
    assert page.status_code == 200
    assert b"Unsubscribe" in page.content
    member.refresh_from_db()
    assert member.marketing_consent  # a GET (a link scanner) changes nothing

    done = client.post(url)

    assert done.status_code == 200
    assert b"no more marketing messages" in done.content
    member.refresh_from_db()
    assert not member.marketing_consent
    change = ConsentChange.objects.filter(member=member).first()
    assert (change.given, change.source) == (False, "unsubscribe")
    assert client.post(url).status_code == 200  # again: still fine, nothing new
    assert ConsentChange.objects.filter(member=member, given=False).count() == 1


def test_a_tampered_unsubscribe_link_is_refused(client, consenting):
    member = consenting(1)[0]
    token = unsubscribe_token(member.pk)
    answer = client.post(f"/unsubscribe/{token[:-2]}xx/")
    assert answer.status_code == 400
    member.refresh_from_db()
    assert member.marketing_consent


def test_offers_page_needs_a_member(client):
    answer = client.get("/portal/offers/")
    assert answer.status_code == 302
    assert "/portal/login/" in answer["Location"]


def test_offers_page_takes_a_fixed_number_of_queries(
    client, consenting, django_assert_max_num_queries
):
    member = consenting(1)[0]
    for _ in range(5):
        campaign = CampaignFactory(
            status="running", offer_kind="bonus", offer_title="Bonus", bonus_points=10
        )
        add_send(campaign, member, at=timezone.now() - timedelta(minutes=5))
    program_settings()  # the row exists in a real program
    client.force_login(member.user)
    # session, user, member, program settings (view and context processor), the offers
    with django_assert_max_num_queries(6):
        page = client.get("/portal/offers/")
    assert page.content.decode().count('data-testid="offer"') == 5


@pytest.mark.parametrize("fixture", ["analyst", "marketer"])
def test_results_pages_for_analysts_and_marketers(request, client, fixture, consenting):
    user = request.getfixturevalue(fixture)
    campaign = CampaignFactory(name="VIP bonus", status="running")
    client.force_login(user)
    listing = client.get("/analytics/campaigns/")
    assert listing.status_code == 200
    assert b"VIP bonus" in listing.content
    detail = client.get(f"/analytics/campaigns/{campaign.pk}/")
    assert detail.status_code == 200
    assert b"Treatment against control" in detail.content


def test_results_pages_refuse_others(client, consenting):
    campaign = CampaignFactory(status="running")
    client.force_login(make_staff("agent", SUPPORT))
    assert client.get("/analytics/campaigns/").status_code == 403
    client.force_login(consenting(1)[0].user)
    assert client.get(f"/analytics/campaigns/{campaign.pk}/").status_code == 403
    client.logout()
    assert client.get("/analytics/campaigns/").status_code == 302


def test_results_list_takes_a_fixed_number_of_queries(
    client, analyst, django_assert_max_num_queries
):
    for _ in range(6):
        CampaignFactory(status="running")
    program_settings()
    client.force_login(analyst)
    # session, user, role, campaigns, settings ×3 (view, results, context), results, exclusions
    with django_assert_max_num_queries(9):
        assert client.get("/analytics/campaigns/").status_code == 200


def test_the_link_in_a_sent_message_unsubscribes(
    client, consenting, django_capture_on_commit_callbacks
):
    import re

    from django.core import mail

    from campaigns.services import launch_campaign
    from tests.campaigns.factories import add_to_segment

    member = consenting(1)[0]
    campaign = CampaignFactory(control_share=0)
    add_to_segment(campaign.segment, [member])
    mail.outbox = []
    with django_capture_on_commit_callbacks(execute=True):
        launch_campaign(campaign=campaign)
    path = re.search(r"https?://[^/\s]+(/unsubscribe/\S+/)", mail.outbox[0].body).group(1)
    assert mail.outbox[0].extra_headers["List-Unsubscribe"].endswith(path + ">")

    assert client.post(path).status_code == 200

    member.refresh_from_db()
    assert not member.marketing_consent


def test_member_export_and_admin_page_show_their_campaigns(client, marketer, consenting):
    from members.services import export_member_data

    member = consenting(1)[0]
    campaign = CampaignFactory(name="Spring")
    add_send(campaign, member, group=Group.CONTROL, status=SendStatus.HELD_OUT, at=timezone.now())
    exported = export_member_data(member=member)["campaigns"]
    assert [(c["campaign"], c["group"]) for c in exported] == [("Spring", "control")]
    client.force_login(marketer)
    page = client.get(f"/admin/members/member/{member.pk}/change/")
    assert page.status_code == 200
    assert "Spring" in page.content.decode()
