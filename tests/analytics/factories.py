"""Factories for the analytics snapshots (what the nightly pipeline writes) and the definitions
(segments, goals), so dashboard and segment tests do not depend on running the pipeline."""

from datetime import date, timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from analytics.models import (
    ChurnRisk,
    ClvBand,
    CohortBasis,
    CohortRetention,
    FitModel,
    Goal,
    Kpi,
    KpiSnapshot,
    MemberMetrics,
    ModelFit,
    PipelineRun,
    RfmSegment,
    RunStatus,
    Segment,
)
from journeys.models import MemberJourney
from rewards.models import PointsAccount
from tests.members.factories import MemberFactory

__all__ = [
    "CohortRetentionFactory",
    "GoalFactory",
    "KpiSnapshotFactory",
    "MemberFactory",
    "MemberMetricsFactory",
    "ModelFitFactory",
    "PipelineRunFactory",
    "SegmentFactory",
    "UserFactory",
    "build_dashboard_snapshots",
    "give_journey",
    "give_tier",
]

AS_OF = date(2026, 3, 31)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"owner{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    is_staff = True


class PipelineRunFactory(factory.django.DjangoModelFactory):
    """A finished, successful run."""

    class Meta:
        model = PipelineRun

    as_of = AS_OF
    trigger = "test"
    status = RunStatus.SUCCEEDED
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyAttribute(lambda o: o.started_at + timedelta(seconds=30))
    chunks = 1
    rows = 0


class ModelFitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelFit

    as_of = AS_OF
    model = FitModel.BG_NBD
    params = factory.LazyFunction(lambda: {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    log_likelihood = -9582.43
    n_customers = 2357
    time_unit = "week"
    converged = True
    fitted_at = factory.LazyFunction(timezone.now)


class MemberMetricsFactory(factory.django.DjangoModelFactory):
    """A scored repeat customer; override the figures a test is about."""

    class Meta:
        model = MemberMetrics

    member = factory.SubFactory(MemberFactory)
    as_of = AS_OF
    first_purchase_on = factory.LazyAttribute(lambda o: o.as_of - timedelta(days=300))
    last_purchase_on = factory.LazyAttribute(lambda o: o.as_of - timedelta(days=20))
    purchase_days = 5
    frequency = 4
    recency_days = 280
    tenure_days = 300
    monetary = Decimal("40.00")
    total_spend = Decimal("200.00")
    p_alive = 0.8
    expected_purchases_90d = 1.2
    expected_purchases_12m = 4.5
    expected_order_value = Decimal("41.00")
    clv_12m = Decimal("180.00")
    clv_band = ClvBand.HIGH
    churn_risk = ChurnRisk.LOW
    recency_score = 4
    frequency_score = 4
    monetary_score = 3
    rfm_segment = RfmSegment.LOYAL


class KpiSnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = KpiSnapshot
        django_get_or_create = ("as_of", "kpi")

    as_of = AS_OF
    kpi = Kpi.MEMBERS
    value = Decimal("100")


class CohortRetentionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CohortRetention

    as_of = AS_OF
    basis = CohortBasis.ENROLLMENT
    cohort = date(2026, 1, 1)
    period = 0
    size = 100
    retained = 100
    projected = None


class SegmentFactory(factory.django.DjangoModelFactory):
    """A segment with no rules (everyone not closed); pass the rules a test is about."""

    class Meta:
        model = Segment
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Segment {n}")
    slug = factory.Sequence(lambda n: f"segment-{n}")

    @factory.post_generation
    def tiers(self, create, extracted, **kwargs):
        if create and extracted:
            self.tiers.set(extracted)

    @factory.post_generation
    def stages(self, create, extracted, **kwargs):
        if create and extracted:
            self.stages.set(extracted)


class GoalFactory(factory.django.DjangoModelFactory):
    """Retention from 0.40 to 0.46 (+15%) over six months."""

    class Meta:
        model = Goal

    name = factory.Sequence(lambda n: f"Goal {n}")
    kpi = Kpi.RETENTION_RATE
    baseline = Decimal("0.40")
    baseline_on = date(2026, 1, 1)
    target = Decimal("0.46")
    deadline = date(2026, 7, 1)
    owner = factory.SubFactory(UserFactory)


def give_tier(member, tier) -> PointsAccount:
    """Put a member in a tier directly (test data; the ledger decides tiers in production)."""
    account, _ = PointsAccount.objects.get_or_create(member=member)
    PointsAccount.objects.filter(pk=account.pk).update(tier=tier)
    account.refresh_from_db()
    return account


def give_journey(member, *, stage=None, last_activity_at=None) -> MemberJourney:
    journey, _ = MemberJourney.objects.update_or_create(
        member=member,
        defaults={
            "stage": stage,
            "entered_at": last_activity_at,
            "last_activity_at": last_activity_at,
        },
    )
    return journey


LATEST, PREVIOUS = AS_OF, AS_OF - timedelta(days=30)

# KPI values on the latest and the previous run's date.
DEMO_KPIS = {
    Kpi.MEMBERS: ("1200", "1100"),
    Kpi.ACTIVE_30D: ("400", "380"),
    Kpi.ACTIVE_90D: ("700", "690"),
    Kpi.RETENTION_RATE: ("0.45", "0.42"),
    Kpi.CHURN_RATE: ("0.55", "0.58"),
    Kpi.REPEAT_PURCHASE_RATE: ("0.30", "0.31"),
    Kpi.PURCHASE_FREQUENCY: ("2.4", "2.3"),
    Kpi.AVERAGE_ORDER_VALUE: ("42.50", "40.00"),
    Kpi.REDEMPTION_RATE: ("0.12", "0.10"),
    Kpi.POINTS_LIABILITY: ("5300.00", "5000.00"),
    Kpi.ENROLLMENTS: ("100", "90"),
    Kpi.ENGAGEMENT: ("3.1", "3.0"),
    Kpi.NPS: ("31.5", "28.0"),
    Kpi.CSAT: ("82.0", "80.0"),
    Kpi.SUBSCRIBERS: ("150", "140"),
    Kpi.SUBSCRIBER_RETENTION: ("0.91", "0.90"),
    Kpi.MRR: ("748.50", "698.60"),
}


def build_dashboard_snapshots(*, members: int = 6) -> dict:
    """Two successful runs 30 days apart with every kind of snapshot, a few scored members
    (the first ones high churn risk), and a goal: what the dashboard tests look at."""
    from rewards.models import Tier

    previous_run = PipelineRunFactory(as_of=PREVIOUS)
    latest_run = PipelineRunFactory(as_of=LATEST)
    for kpi, (latest, previous) in DEMO_KPIS.items():
        KpiSnapshotFactory(run=latest_run, as_of=LATEST, kpi=kpi, value=Decimal(latest))
        KpiSnapshotFactory(run=previous_run, as_of=PREVIOUS, kpi=kpi, value=Decimal(previous))
    for run in (previous_run, latest_run):
        for basis in (CohortBasis.ENROLLMENT, CohortBasis.FIRST_PURCHASE):
            for cohort, size in ((date(2026, 1, 1), 100), (date(2026, 2, 1), 80)):
                for period in range(0, 3 if cohort.month == 1 else 2):
                    CohortRetentionFactory(
                        run=run,
                        as_of=run.as_of,
                        basis=basis,
                        cohort=cohort,
                        period=period,
                        size=size,
                        retained=size - 20 * period,
                    )
        for cohort, size in ((date(2026, 1, 1), 50), (date(2026, 2, 1), 40)):
            for period in range(0, 3 if cohort.month == 1 else 2):
                CohortRetentionFactory(
                    run=run,
                    as_of=run.as_of,
                    basis=CohortBasis.SUBSCRIPTION,
                    cohort=cohort,
                    period=period,
                    size=size,
                    retained=size - 5 * period,
                    projected=1.0 - 0.12 * period,
                )
    ModelFitFactory(
        run=latest_run,
        as_of=LATEST,
        model=FitModel.SBG,
        scope="all plans",
        params={"gamma": 0.704, "delta": 1.182},
        converged=True,
        log_likelihood=-120.5,
        n_customers=90,
        time_unit="month",
    )
    ModelFitFactory(run=latest_run, as_of=LATEST)
    gold = Tier.objects.get_or_create(name="Gold", defaults={"rank": 90})[0]
    scored = []
    for index in range(members):
        member = MemberFactory(first_name=f"Scored{index}", last_name="Member")
        give_tier(member, gold if index % 2 == 0 else None)
        scored.append(
            MemberMetricsFactory(
                member=member,
                as_of=LATEST,
                clv_12m=Decimal(100 * (index + 1)),
                p_alive=0.9 - index * 0.1,
                churn_risk=ChurnRisk.HIGH if index < members // 2 else ChurnRisk.LOW,
                rfm_segment=RfmSegment.AT_RISK if index < members // 2 else RfmSegment.CHAMPIONS,
                clv_band=ClvBand.TOP if index == members - 1 else ClvBand.MEDIUM,
            )
        )
    goal = GoalFactory(
        name="Retention +15%",
        baseline=Decimal("0.40"),
        baseline_on=date(2026, 1, 1),
        target=Decimal("0.46"),
        deadline=date(2026, 7, 1),
    )
    return {
        "latest_run": latest_run,
        "previous_run": previous_run,
        "metrics": scored,
        "goal": goal,
        "tier": gold,
    }
