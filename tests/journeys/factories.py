import factory

from journeys.models import AllowedEventType, Touchpoint, TouchpointChannel
from tests.rewards.factories import EarningRuleFactory, MemberFactory

__all__ = ["AllowedEventTypeFactory", "EarningRuleFactory", "MemberFactory", "TouchpointFactory"]


class TouchpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Touchpoint

    name = factory.Sequence(lambda n: f"Touchpoint {n}")
    slug = factory.Sequence(lambda n: f"touchpoint-{n}")
    channel = TouchpointChannel.WEB


class AllowedEventTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AllowedEventType

    name = factory.Sequence(lambda n: f"custom_event_{n}")
