"""GET /api/v1/campaigns/ and /api/v1/campaigns/{id}/results/ with an API key."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns.models import Group, SendStatus
from members.roles import ANALYST, MARKETER, SUPPORT
from members.services import create_api_key
from tests.campaigns.factories import CampaignFactory, add_send
from tests.conftest import make_staff

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    _, raw = create_api_key(user=user, name=f"key for {user.username}")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


@pytest.fixture
def campaign(consenting):
    members = consenting(4)
    campaign = CampaignFactory(name="Win back", status="running")
    at = timezone.now() - timedelta(days=1)
    for number, member in enumerate(members):
        control = number == 0
        add_send(
            campaign,
            member,
            group=Group.CONTROL if control else Group.TREATMENT,
            status=SendStatus.HELD_OUT if control else SendStatus.SENT,
            at=at,
        )
    return campaign


@pytest.mark.parametrize("role", [ANALYST, MARKETER])
def test_analysts_and_marketers_read_results(role, campaign):
    client = client_for(make_staff(f"user-{role}", role))

    answer = client.get(f"/api/v1/campaigns/{campaign.pk}/results/")

    assert answer.status_code == 200, answer.content
    data = answer.json()
    assert data["name"] == "Win back"
    assert data["treatment"]["members"] == 3
    assert data["control"]["members"] == 1
    assert data["treatment"]["conversion_rate"] == 0.0
    assert data["uplift"]["method"] == "newcombe_hybrid_score"
    assert data["uplift"]["difference"] == 0.0
    assert data["uplift"]["ci95_low"] < 0 < data["uplift"]["ci95_high"]
    assert data["points_cost"] == 0 and data["roi"] is None


def test_campaign_list_and_detail(campaign, analyst):
    client = client_for(analyst)
    listing = client.get("/api/v1/campaigns/")
    assert listing.status_code == 200
    assert [row["name"] for row in listing.json()["results"]] == ["Win back"]
    detail = client.get(f"/api/v1/campaigns/{campaign.pk}/")
    assert detail.json()["status"] == "running"


def test_results_need_the_view_permission(campaign):
    client = client_for(make_staff("agent", SUPPORT))
    assert client.get(f"/api/v1/campaigns/{campaign.pk}/results/").status_code == 403


def test_results_need_a_key(campaign):
    assert APIClient().get(f"/api/v1/campaigns/{campaign.pk}/results/").status_code in (401, 403)


def test_unknown_campaign_is_404(analyst):
    assert client_for(analyst).get("/api/v1/campaigns/999999/results/").status_code == 404


def test_campaigns_are_read_only(campaign, marketer):
    client = client_for(marketer)
    assert client.post("/api/v1/campaigns/", {"name": "x"}).status_code == 405
