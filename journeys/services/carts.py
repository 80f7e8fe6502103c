"""Abandoned carts: a cart_add with no purchase by the member within the configured hours
becomes one cart_abandon event, dated when the wait ran out.

Several cart_adds close together are one cart: a cart_add followed by another one within the
wait is not abandoned yet, the last one decides. The cart_abandon's idempotency key is derived
from the cart_add, so running the detection again (or twice at once) creates nothing new.
"""

import logging
from datetime import datetime, timedelta

from django.db.models import CharField, DateTimeField, Exists, ExpressionWrapper, OuterRef, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from members.models import MemberStatus

from ..exceptions import InvalidEvent
from ..models import CustomerEvent, EventSource, EventType
from ..selectors import journey_settings
from .batch import ingest_events
from .ingest import EventData

logger = logging.getLogger(__name__)

LOOKBACK = timedelta(days=7)
KEY_PREFIX = "cart_abandon:"
BATCH = 500


def abandon_key(cart_add_id: int) -> str:
    return f"{KEY_PREFIX}{cart_add_id}"


def detect_abandoned_carts(*, as_of: datetime | None = None) -> int:
    """Create the cart_abandon events due by `as_of`; returns how many were created.

    Looks back a week beyond the wait, so a missed run is caught up by the next one."""
    now = timezone.now()
    as_of = min(as_of or now, now)  # an abandonment is never dated in the future
    wait = timedelta(hours=journey_settings().cart_abandon_hours)
    deadline = ExpressionWrapper(OuterRef("occurred_at") + wait, output_field=DateTimeField())
    later = CustomerEvent.objects.filter(
        member_id=OuterRef("member_id"),
        occurred_at__gte=OuterRef("occurred_at"),
        occurred_at__lte=deadline,
    )
    due = (
        CustomerEvent.objects.filter(
            event_type=EventType.CART_ADD,
            occurred_at__lte=as_of - wait,
            occurred_at__gt=as_of - wait - LOOKBACK,
        )
        .exclude(member__status=MemberStatus.CLOSED)
        .annotate(
            bought=Exists(later.filter(event_type=EventType.PURCHASE)),
            added_more=Exists(
                later.filter(event_type=EventType.CART_ADD).exclude(pk=OuterRef("pk"))
            ),
            flagged=Exists(
                CustomerEvent.objects.filter(
                    idempotency_key=Concat(
                        Value(KEY_PREFIX), Cast(OuterRef("pk"), output_field=CharField())
                    )
                )
            ),
        )
        .filter(bought=False, added_more=False, flagged=False)
        .select_related("member", "touchpoint")
        .order_by("occurred_at", "id")
    )
    carts = list(due)
    created = 0
    for start in range(0, len(carts), BATCH):
        events = [
            EventData(
                member=cart.member,
                event_type=EventType.CART_ABANDON,
                occurred_at=cart.occurred_at + wait,
                idempotency_key=abandon_key(cart.pk),
                channel=cart.channel,
                touchpoint=cart.touchpoint,
                amount=cart.amount,
                currency=cart.currency,
                properties={**(cart.properties or {}), "cart_add_event_id": cart.pk},
                source=EventSource.SYSTEM,
            )
            for cart in carts[start : start + BATCH]
        ]
        for result in ingest_events(events=events):
            if isinstance(result, InvalidEvent):
                logger.warning("cart_abandon rejected: %s", result)
            elif result.created:
                created += 1
    if created:
        logger.info("detect_abandoned_carts as of %s: %s carts", as_of.isoformat(), created)
    return created
