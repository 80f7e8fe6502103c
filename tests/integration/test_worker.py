import time

import pytest

from members.services import close_member
from members.tasks import send_welcome_email
from tests.members.factories import MemberFactory

pytestmark = pytest.mark.integration


def _wait_for_mail(mail_dir, count, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mails = sorted(mail_dir.glob("*.log")) if mail_dir.exists() else []
        if len(mails) >= count:
            return mails
        time.sleep(0.2)
    return sorted(mail_dir.glob("*.log")) if mail_dir.exists() else []


@pytest.mark.django_db(transaction=True)
def test_enrollment_queues_a_welcome_email_that_a_real_worker_sends(celery_worker_process):
    member = MemberFactory(email="welcome@example.com", first_name="Wil")
    mails = _wait_for_mail(celery_worker_process["mail_dir"], 1)
    assert len(mails) == 1, celery_worker_process["log"].read_text()[-3000:]
    body = mails[0].read_text()
    assert "To: welcome@example.com" in body
    assert member.member_number in body

    closed = MemberFactory(email="leaver@example.com")
    close_member(member=closed)
    assert send_welcome_email.delay(closed.pk).get(timeout=60) is False
