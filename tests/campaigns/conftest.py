import pytest
from django.core import mail

from tests.members.factories import MemberFactory


@pytest.fixture(autouse=True)
def _clean_outbox():
    mail.outbox = []


@pytest.fixture
def consenting(db):
    """Make members who agreed to marketing messages."""

    def make(count: int = 1, **kwargs):
        return [MemberFactory(marketing_consent=True, **kwargs) for _ in range(count)]

    return make
