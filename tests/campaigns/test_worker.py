"""A real Celery worker sends a campaign's batches (Redis broker, the test database)."""

import time
from decimal import Decimal

import pytest

from campaigns import services
from campaigns.models import CampaignSend, CampaignSettings, SendStatus
from tests.campaigns.factories import CampaignFactory, add_to_segment
from tests.integration.conftest import celery_worker_process  # noqa: F401 (the fixture)
from tests.members.factories import MemberFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_sends_the_campaign_in_batches(celery_worker_process):  # noqa: F811
    services.campaign_settings()
    CampaignSettings.objects.update(batch_size=2, messages_per_minute=6000)
    members = [
        MemberFactory(email=f"fan{n}@example.com", marketing_consent=True, channel="import")
        for n in range(5)
    ]
    campaign = CampaignFactory(
        control_share=Decimal("0"), subject_template="Batch {{ first_name }}"
    )
    add_to_segment(campaign.segment, members)

    services.launch_campaign(campaign=campaign)  # three batches, queued on commit

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not CampaignSend.objects.filter(campaign=campaign, status=SendStatus.PENDING).exists():
            break
        time.sleep(0.2)
    log = celery_worker_process["log"].read_text()
    statuses = list(CampaignSend.objects.filter(campaign=campaign).values_list("status", flat=True))
    assert statuses == [SendStatus.SENT] * 5, log[-3000:]
    assert log.count("campaigns.tasks.deliver_batch") >= 3
    mails = list(celery_worker_process["mail_dir"].glob("*.log"))
    bodies = "".join(path.read_text() for path in mails)
    assert bodies.count("Subject: Batch ") == 5
