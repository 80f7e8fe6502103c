from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from analytics.models import Segment, SegmentMembership
from campaigns.models import Campaign, CampaignSend, Group, OfferKind, Schedule, SendStatus
from tests.members.factories import MemberFactory

__all__ = ["CampaignFactory", "MemberFactory", "SegmentFactory", "add_send", "add_to_segment"]


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Segment

    name = factory.Sequence(lambda n: f"Segment {n}")
    slug = factory.Sequence(lambda n: f"segment-{n}")


def add_to_segment(segment: Segment, members, *, at=None) -> None:
    """Stored membership as a refresh would leave it (added_at = when they entered)."""
    at = at or timezone.now()
    SegmentMembership.objects.bulk_create(
        [
            SegmentMembership(segment=segment, member_id=getattr(m, "pk", m), added_at=at)
            for m in members
        ]
    )


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    segment = factory.SubFactory(SegmentFactory)
    schedule = Schedule.ONCE
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    ends_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=14))
    control_share = Decimal("0.2")
    offer_kind = OfferKind.NONE
    subject_template = "Hi {{ first_name }}"
    body_template = "You have {{ points }} {{ points_name }}."


def add_send(
    campaign: Campaign, member, *, group=Group.TREATMENT, status=SendStatus.SENT, at=None
) -> CampaignSend:
    """The member in the campaign as a one-off launch at `at` (default: the campaign's start)
    leaves them: sent then when the status is sent."""
    at = at or campaign.starts_at
    return CampaignSend.objects.create(
        campaign=campaign,
        member=member,
        group=group,
        status=status,
        trigger=Schedule.ONCE,
        assigned_at=at,
        sent_at=at if status == SendStatus.SENT else None,
    )
