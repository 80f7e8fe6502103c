"""Demo data for journeys: touchpoints and plausible event streams for the demo members.

Purchases follow the repeat-buying story of the BG/NBD model: while "alive", each member buys
as a Poisson process with their own rate (rates across members are gamma distributed), and
after each purchase drops out with their own probability (beta distributed). Spend per order
scatters around a member's own mean (gamma, as in Gamma-Gamma). Around the purchases come page
views, carts (some abandoned), reviews and shares, on the channels and touchpoints below.

Events are written with bulk inserts, and each member's stage history is replayed in memory
by the journey's own rule engine, so stages and transitions agree with the events. No points:
the rewards seeder writes the ledger history. Idempotent: nothing is added once demo events
exist."""

import random
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from members.models import Member
from rewards.selectors import program_settings

from .models import (
    CustomerEvent,
    EventSource,
    EventType,
    JourneyStage,
    MemberJourney,
    StageTransition,
    Touchpoint,
    TouchpointChannel,
)
from .services.stages import COUNTED_TYPES, HistoryCounter, JourneyConfig, JourneyState

KEY_PREFIX = "demo:"
BATCH = 5000
MAX_PURCHASES = 80

# (slug, name, channel, stage slug)
TOUCHPOINTS = [
    ("web-signup", "Website sign-up", TouchpointChannel.WEB, "awareness"),
    ("store-signup", "In-store sign-up", TouchpointChannel.STORE, "awareness"),
    ("instagram", "Instagram", TouchpointChannel.SOCIAL, "awareness"),
    ("newsletter", "Newsletter", TouchpointChannel.EMAIL, "consideration"),
    ("product-page", "Product page", TouchpointChannel.WEB, "consideration"),
    ("app-home", "App home screen", TouchpointChannel.MOBILE_APP, "consideration"),
    ("web-cart", "Website cart", TouchpointChannel.WEB, "consideration"),
    ("app-cart", "App cart", TouchpointChannel.MOBILE_APP, "consideration"),
    ("web-checkout", "Website checkout", TouchpointChannel.WEB, "first-purchase"),
    ("app-checkout", "App checkout", TouchpointChannel.MOBILE_APP, "first-purchase"),
    ("store-till", "Store till", TouchpointChannel.STORE, "repeat"),
    ("product-reviews", "Product reviews", TouchpointChannel.WEB, "advocate"),
    ("social-share", "Share buttons", TouchpointChannel.SOCIAL, "advocate"),
    ("help-line", "Help line", TouchpointChannel.CALL_CENTRE, "at-risk"),
]
PURCHASE_CHANNELS = [
    (TouchpointChannel.WEB, "web-checkout", 0.5),
    (TouchpointChannel.MOBILE_APP, "app-checkout", 0.25),
    (TouchpointChannel.STORE, "store-till", 0.25),
]
BROWSE = [
    (TouchpointChannel.WEB, "product-page", 0.55),
    (TouchpointChannel.MOBILE_APP, "app-home", 0.25),
    (TouchpointChannel.EMAIL, "newsletter", 0.12),
    (TouchpointChannel.SOCIAL, "instagram", 0.08),
]
CARTS = {
    TouchpointChannel.WEB: "web-cart",
    TouchpointChannel.MOBILE_APP: "app-cart",
    TouchpointChannel.STORE: "web-cart",
}
CATEGORIES = ["shoes", "clothing", "home", "beauty", "food", "electronics"]


def seed_journeys(*, rng: random.Random, stdout) -> None:
    if CustomerEvent.objects.filter(idempotency_key__startswith=KEY_PREFIX).exists():
        stdout.write("journeys: demo events exist, nothing added")
        return
    if not JourneyStage.objects.exists():
        from .services import seed_default_stages

        seed_default_stages()
    touchpoints = _seed_touchpoints()
    members = list(
        Member.objects.filter(external_id__startswith="DEMO-")
        .exclude(pk__in=CustomerEvent.objects.values("member_id"))
        .exclude(pk__in=MemberJourney.objects.values("member_id"))
        .order_by("pk")
        .values_list("pk", "enrolled_at", "enrollment_channel")
    )
    if not members:
        stdout.write("journeys: no demo members without events")
        return
    now = timezone.now()
    currency = program_settings().currency or "EUR"
    events: list[CustomerEvent] = []
    for member_id, enrolled_at, enrollment_channel in members:
        events.extend(
            _member_events(
                rng,
                member_id=member_id,
                enrolled_at=enrolled_at,
                in_store=enrollment_channel == "pos",
                now=now,
                touchpoints=touchpoints,
                currency=currency,
            )
        )
    with transaction.atomic():
        CustomerEvent.objects.bulk_create(events, batch_size=BATCH)
        transitions, journeys = _replay(events, now)
        StageTransition.objects.bulk_create(transitions, batch_size=BATCH)
        MemberJourney.objects.bulk_create(journeys, batch_size=BATCH)
    stdout.write(
        f"journeys: {len(events)} events, {len(transitions)} stage moves for {len(members)} members"
    )


def _seed_touchpoints() -> dict[str, int]:
    stages = dict(JourneyStage.objects.values_list("slug", "pk"))
    ids = {}
    for slug, name, channel, stage_slug in TOUCHPOINTS:
        touchpoint, _ = Touchpoint.objects.get_or_create(
            slug=slug,
            defaults={"name": name, "channel": channel, "stage_id": stages.get(stage_slug)},
        )
        ids[slug] = touchpoint.pk
    return ids


def _weighted(rng: random.Random, options):
    pick = rng.random() * sum(o[-1] for o in options)
    for option in options:
        pick -= option[-1]
        if pick <= 0:
            return option
    return options[-1]


def _member_events(
    rng: random.Random,
    *,
    member_id: int,
    enrolled_at: datetime,
    in_store: bool,
    now: datetime,
    touchpoints: dict[str, int],
    currency: str,
) -> list[CustomerEvent]:
    rows: list[CustomerEvent] = []

    def add(event_type, at, channel, touchpoint, amount=None, order_id="", properties=None):
        if at > now:
            return
        rows.append(
            CustomerEvent(
                member_id=member_id,
                event_type=event_type,
                occurred_at=at,
                received_at=at + timedelta(seconds=rng.randint(1, 90)),
                channel=channel,
                touchpoint_id=touchpoints[touchpoint],
                amount=amount,
                currency=currency if amount is not None else "",
                order_id=order_id,
                properties=properties or {},
                idempotency_key=f"{KEY_PREFIX}{member_id}:{len(rows)}",
                source=EventSource.API,
            )
        )

    def browse(before: datetime, count: int) -> None:
        for _ in range(count):
            channel, touchpoint, _ = _weighted(rng, BROWSE)
            at = before - timedelta(hours=rng.uniform(0.2, 24 * 6))
            add(EventType.PAGE_VIEW, max(at, enrolled_at), channel, touchpoint)

    if in_store:
        add(EventType.SIGNUP, enrolled_at, TouchpointChannel.STORE, "store-signup")
    else:
        add(EventType.SIGNUP, enrolled_at, TouchpointChannel.WEB, "web-signup")
    browse(enrolled_at + timedelta(days=3), rng.randint(0, 3))

    # BG/NBD: purchase rate per day ~ Gamma(r, 1/alpha); dropout after each purchase ~ Beta(a, b).
    rate = rng.gammavariate(0.9, 1 / 35)
    dropout = rng.betavariate(0.7, 3.5)
    mean_spend = rng.gammavariate(4, 14)
    at = enrolled_at + timedelta(days=rng.expovariate(rate) if rate > 0 else 10_000)
    purchases = 0
    while at < now and purchases < MAX_PURCHASES:
        purchases += 1
        channel, touchpoint, _ = _weighted(rng, PURCHASE_CHANNELS)
        browse(at, rng.randint(0, 3))
        if channel != TouchpointChannel.STORE and rng.random() < 0.8:
            add(
                EventType.CART_ADD,
                at - timedelta(minutes=rng.uniform(3, 90)),
                channel,
                CARTS[channel],
            )
        amount = Decimal(str(round(max(2.0, rng.gammavariate(6, mean_spend / 6)), 2)))
        category = rng.choice(CATEGORIES)
        add(
            EventType.PURCHASE,
            at,
            channel,
            touchpoint,
            amount=amount,
            order_id=f"DEMO-{member_id}-{purchases}",
            properties={"category": category},
        )
        if rng.random() < 0.12:
            add(
                EventType.REVIEW,
                at + timedelta(days=rng.uniform(2, 14)),
                TouchpointChannel.WEB,
                "product-reviews",
                properties={"rating": rng.choice([3, 4, 4, 5, 5, 5])},
            )
        if rng.random() < 0.05:
            add(EventType.SHARE, at + timedelta(hours=rng.uniform(1, 48)), "social", "social-share")
        if rng.random() < 0.03:
            add(
                EventType.SUPPORT_CONTACT,
                at + timedelta(days=rng.uniform(1, 10)),
                TouchpointChannel.CALL_CENTRE,
                "help-line",
            )
        if rng.random() < dropout:
            break
        at += timedelta(days=rng.expovariate(rate))
    # Carts left behind: more for members who browse but buy little.
    last = max((row.occurred_at for row in rows), default=enrolled_at)
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        channel = rng.choice([TouchpointChannel.WEB, TouchpointChannel.MOBILE_APP])
        cart_at = enrolled_at + (last - enrolled_at) * rng.random() + timedelta(hours=1)
        add(EventType.CART_ADD, cart_at, channel, CARTS[channel])
        add(EventType.CART_ABANDON, cart_at + timedelta(hours=24), channel, CARTS[channel])
    return rows


def _replay(
    events: list[CustomerEvent], now: datetime
) -> tuple[list[StageTransition], list[MemberJourney]]:
    """Each member's stage history from their events, by the journey's own rules."""
    config = JourneyConfig.load()
    by_member: dict[int, list[CustomerEvent]] = {}
    for event in events:
        by_member.setdefault(event.member_id, []).append(event)
    transitions: list[StageTransition] = []
    journeys: list[MemberJourney] = []
    for member_id, member_events in by_member.items():
        member_events.sort(key=lambda e: (e.occurred_at, e.pk))
        history: dict[str, list[datetime]] = {}
        for event in member_events:
            if event.event_type in COUNTED_TYPES:
                history.setdefault(event.event_type, []).append(event.occurred_at)
        counter = HistoryCounter(history)
        state = JourneyState()
        for event in member_events:
            for move in config.on_event(state, event.event_type, event.occurred_at, counter):
                transitions.append(_transition(member_id, move, event.pk))
        for move in config.catch_up_inactivity(state, now):
            transitions.append(_transition(member_id, move, None))
        journeys.append(
            MemberJourney(
                member_id=member_id,
                stage_id=state.stage_id,
                entered_at=state.entered_at,
                last_activity_at=state.last_activity_at,
                last_lifecycle_stage_id=state.last_lifecycle_stage_id,
            )
        )
    return transitions, journeys


def _transition(member_id: int, move, event_id: int | None) -> StageTransition:
    return StageTransition(
        member_id=member_id,
        from_stage_id=move.from_stage_id,
        to_stage_id=move.to_stage_id,
        at=move.at,
        cause=move.cause,
        rule_id=move.rule_id,
        event_id=event_id if move.cause != "inactivity" else None,
    )
