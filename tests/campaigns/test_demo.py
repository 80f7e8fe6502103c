import io
import random

import pytest

from campaigns.demo import VIP, WIN_BACK, seed_campaigns
from campaigns.models import Campaign, CampaignSend, Group
from campaigns.selectors import results_for
from tests.campaigns.factories import SegmentFactory
from tests.rewards.factories import EarningRuleFactory

pytestmark = pytest.mark.django_db


def test_demo_campaigns_have_sends_and_results_and_are_added_once(consenting):
    EarningRuleFactory()
    consenting(60, country="BE")
    consenting(15, country="DE")
    # The seeder refreshes the segments from their rules.
    SegmentFactory(slug="at-risk", countries=["BE"])
    SegmentFactory(slug="champions", countries=["DE"])

    seed_campaigns(rng=random.Random(3), stdout=io.StringIO())
    counts = CampaignSend.objects.count()
    seed_campaigns(rng=random.Random(4), stdout=io.StringIO())

    assert counts == 75
    assert CampaignSend.objects.count() == counts
    win_back, vip = Campaign.objects.get(name=WIN_BACK), Campaign.objects.get(name=VIP)
    assert CampaignSend.objects.filter(campaign=win_back, group=Group.CONTROL).exists()
    treated = CampaignSend.objects.filter(campaign=win_back, status="sent").count()
    assert win_back.points_awarded == 200 * treated
    result = results_for(win_back)
    assert result.treatment.members == treated
    assert result.uplift.difference is not None
    assert result.treatment.conversions > 0  # the demo's extra purchases after the send
    vip_result = results_for(vip)
    assert vip_result.treatment.members + vip_result.control.members == 15
    assert vip.points_awarded > 0  # double points on those purchases
