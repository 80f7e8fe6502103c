import factory
from django.utils import timezone

from members.models import Channel, Member


class MemberFactory(factory.django.DjangoModelFactory):
    """A member enrolled through the service, so codes and login are made as in production."""

    class Meta:
        model = Member

    email = factory.Sequence(lambda n: f"member{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    country = "NL"

    @classmethod
    def _create(cls, model_class, *args, password=None, channel=Channel.WEB, **kwargs):
        from members.services import enroll_member

        email = kwargs.pop("email", None)
        external_id = kwargs.pop("external_id", None)
        enrolled_at = kwargs.pop("enrolled_at", None) or timezone.now()
        member, _ = enroll_member(
            channel=channel,
            email=email,
            external_id=external_id,
            password=password,
            enrolled_at=enrolled_at,
            **kwargs,
        )
        return member
