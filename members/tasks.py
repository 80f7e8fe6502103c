"""Celery tasks for members: thin wrappers around services, safe to run twice."""

import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from .models import Member, MemberStatus

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_welcome_email(member_id: int) -> bool:
    """Welcome a new member by email; skips members who left or have no email."""
    member = Member.objects.filter(pk=member_id).first()
    if member is None or not member.email or member.status == MemberStatus.CLOSED:
        return False
    context = {"member": member, "portal_url": settings.PORTAL_BASE_URL}
    send_mail(
        subject=render_to_string("emails/welcome_subject.txt", context).strip(),
        message=render_to_string("emails/welcome.txt", context),
        from_email=None,
        recipient_list=[member.email],
    )
    logger.info("sent welcome email to member %s", member.member_number)
    return True
