"""Who a campaign reaches, and the holdout group: random, of the configured share, and the
same member always in the same group of a campaign."""

from decimal import Decimal

import pytest

from campaigns import services
from campaigns.models import CampaignSend, Group
from tests.campaigns.factories import CampaignFactory, SegmentFactory, add_send, add_to_segment


def test_control_share_is_close_to_the_configured_share_over_10000_members():
    share = Decimal("0.2")
    in_control = sum(services.in_control_group(7, pk, share) for pk in range(1, 10_001))
    # Binomial(10000, 0.2): standard deviation 40, so ±160 is four of them.
    assert abs(in_control - 2000) < 160


@pytest.mark.parametrize("share", ["0", "0.05", "0.5", "0.9"])
def test_control_share_holds_at_other_shares(share):
    count = sum(services.in_control_group(3, pk, Decimal(share)) for pk in range(10_000))
    expected = float(share) * 10_000
    assert abs(count - expected) <= 4 * (expected * (1 - float(share))) ** 0.5 + 1


def test_the_same_member_stays_in_the_same_group_and_campaigns_differ():
    share = Decimal("0.3")
    first = [services.in_control_group(11, pk, share) for pk in range(2000)]
    again = [services.in_control_group(11, pk, share) for pk in range(2000)]
    other = [services.in_control_group(12, pk, share) for pk in range(2000)]
    assert first == again
    assert first != other  # another campaign draws another control group
    # Independent draws: about share² of members are in both control groups.
    both = sum(a and b for a, b in zip(first, other, strict=True))
    assert 100 < both < 260


@pytest.mark.django_db
def test_recorded_groups_match_a_recomputation(consenting, django_capture_on_commit_callbacks):
    members = consenting(40)
    campaign = CampaignFactory(control_share=Decimal("0.25"))
    add_to_segment(campaign.segment, members)
    with django_capture_on_commit_callbacks(execute=True):
        services.launch_campaign(campaign=campaign)
    recorded = dict(CampaignSend.objects.values_list("member_id", "group"))
    assert recorded == {m.pk: services.group_for(campaign, m.pk) for m in members}
    assert set(recorded.values()) == {Group.TREATMENT, Group.CONTROL}


@pytest.mark.django_db
def test_audience_is_the_segment_and_the_count_adds_up(consenting):
    type(services.campaign_settings()).objects.update(weekly_message_cap=1)
    inside = consenting(30)
    outside = consenting(5)
    from tests.members.factories import MemberFactory

    no_consent = [MemberFactory(marketing_consent=False) for _ in range(4)]
    segment = SegmentFactory()
    add_to_segment(segment, inside + no_consent)
    capped_campaign = CampaignFactory(segment=segment, control_share=0)
    for member in inside[:3]:
        add_send(capped_campaign, member)
    campaign = CampaignFactory(segment=segment, control_share=Decimal("0.5"))

    audience = services.count_audience(campaign)

    expected_control = sum(services.group_for(campaign, m.pk) == Group.CONTROL for m in inside[3:])
    assert audience.segment_members == 34
    assert (audience.no_consent, audience.capped, audience.no_address) == (4, 3, 0)
    assert audience.control == expected_control
    assert audience.treatment == 27 - expected_control
    assert not {m.pk for m in outside} & set(services.audience_member_ids(campaign))
