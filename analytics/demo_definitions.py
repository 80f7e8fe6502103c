"""Demo segments and goals, so the admin and the dashboards show what marketers define. Called
by the analytics demo seeder; safe to run again (segments by slug, goals by name). Goals take
their baseline from the KPI snapshots when there are some (run it after the pipeline for that),
otherwise from a plausible fixed figure dated today."""

from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils import timezone

from .goals import latest_kpi_value, target_from_change
from .models import ClvBand, ConsentFilter, Goal, Kpi, KpiSnapshot, RfmSegment, Segment
from .segments import refresh_segments

DEMO_SEGMENTS = [
    {
        "slug": "champions",
        "name": "Champions",
        "description": "Bought recently, often and for a lot: thank them, ask for referrals.",
        "rfm_segments": [RfmSegment.CHAMPIONS],
    },
    {
        "slug": "at-risk-high-value",
        "name": "At risk high value",
        "description": "The top 30% by expected value whose probability of still being a "
        "customer has fallen below 70%: win them back first.",
        "clv_bands": [ClvBand.TOP, ClvBand.HIGH],
        "max_p_alive": 0.7,
    },
    {
        "slug": "lapsed-with-consent",
        "name": "Lapsed with consent",
        "description": "No activity for six months, and they agreed to hear from us.",
        "inactive_for_days": 180,
        "marketing_consent": ConsentFilter.GIVEN,
    },
    {
        "slug": "new-members",
        "name": "New members",
        "description": "Enrolled or first active in the last 30 days: the welcome series.",
        "rfm_segments": [RfmSegment.NEW, RfmSegment.NO_PURCHASE],
        "active_within_days": 30,
    },
]

# (name, KPI, change from the latest figure, months to the deadline)
DEMO_GOALS = [
    ("Retention rate +15% in 6 months", Kpi.RETENTION_RATE, "+15%", 6),
    ("Average order value +20%", Kpi.AVERAGE_ORDER_VALUE, "+20%", 12),
]

BASELINE_DAYS = 60
FALLBACK_BASELINES = {Kpi.RETENTION_RATE: Decimal("0.40"), Kpi.AVERAGE_ORDER_VALUE: Decimal("35")}


def _baseline_snapshot(kpi: str) -> KpiSnapshot | None:
    """The KPI's oldest figure of the last BASELINE_DAYS of snapshots, so a demo run with
    history shows a goal part of the way along; None before the pipeline's first run."""
    latest = latest_kpi_value(kpi)
    if latest is None:
        return None
    return (
        KpiSnapshot.objects.filter(
            kpi=kpi, value__gt=0, as_of__gte=latest.as_of - timedelta(days=BASELINE_DAYS)
        )
        .order_by("as_of")
        .first()
    )


def seed_definitions(*, rng=None, stdout=None) -> dict[str, int]:
    """Create the demo segments and goals when missing, and refresh the segments. `rng` is
    accepted for the seeders' common signature (nothing here is random)."""
    User = get_user_model()
    owner = (
        User.objects.filter(is_superuser=True).order_by("pk").first()
        or User.objects.filter(is_staff=True).order_by("pk").first()
    )
    segments_created = 0
    for spec in DEMO_SEGMENTS:
        values = {key: value for key, value in spec.items() if key != "slug"}
        _, created = Segment.objects.get_or_create(
            slug=spec["slug"], defaults={**values, "created_by": owner}
        )
        segments_created += created
    counts = refresh_segments(
        segment_ids=Segment.objects.filter(slug__in=[s["slug"] for s in DEMO_SEGMENTS]).values_list(
            "pk", flat=True
        )
    )
    goals_created = 0
    if owner is not None:
        today = timezone.now().date()
        for name, kpi, change, months in DEMO_GOALS:
            if Goal.objects.filter(name=name).exists():
                continue
            snapshot = _baseline_snapshot(kpi)
            baseline = snapshot.value if snapshot else FALLBACK_BASELINES[kpi]
            baseline_on = snapshot.as_of if snapshot else today
            if not baseline:
                baseline = FALLBACK_BASELINES[kpi]
            target = target_from_change(baseline=baseline, change=change).quantize(
                Decimal("0.000001")
            )
            Goal.objects.create(
                name=name,
                kpi=kpi,
                baseline=baseline,
                baseline_on=baseline_on,
                target=target,
                deadline=baseline_on + timedelta(days=round(months * 30.44)),
                owner=owner,
                notes="Demo goal.",
            )
            goals_created += 1
    if stdout is not None:
        summary = ", ".join(
            f"{name}: {counts.get(pk, 0)}"
            for pk, name in Segment.objects.filter(pk__in=counts).values_list("pk", "name")
        )
        stdout.write(
            f"Analytics definitions: {segments_created} segment(s) and {goals_created} goal(s) "
            f"created; members per segment: {summary}."
        )
    return {"segments": segments_created, "goals": goals_created}
