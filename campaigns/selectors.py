"""Reads shared by the portal, the results page, the API and the admin.

Results compare the treatment group (members who were sent the message) with the holdout
control group (held out at the same moment) from each member's `assigned_at`: a member
converts with a purchase event within the campaign's `conversion_days`; revenue is the sum of
those purchases. While a window is still open the figures are partial.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from journeys.models import CustomerEvent
from members.models import Member
from rewards.selectors import program_settings

from .models import Campaign, CampaignSend, CampaignStatus, Group, OfferKind, SendStatus
from .stats import Uplift, uplift

PURCHASE = "purchase"
CENT = Decimal("0.01")


def member_offers(member: Member, *, now: datetime | None = None) -> QuerySet[CampaignSend]:
    """The member's personal offers running now: campaigns whose offer they were sent, in the
    offer's window, with budget left."""
    now = now or timezone.now()
    return (
        CampaignSend.objects.filter(
            member_id=member.pk,
            group=Group.TREATMENT,
            status=SendStatus.SENT,
            campaign__status=CampaignStatus.RUNNING,
            campaign__starts_at__lte=now,
            campaign__ends_at__gt=now,
        )
        .exclude(campaign__offer_kind=OfferKind.NONE)
        .exclude(
            Q(campaign__points_budget__isnull=False)
            & Q(campaign__points_awarded__gte=F("campaign__points_budget"))
        )
        .select_related("campaign", "campaign__reward")
        .order_by("campaign__ends_at", "campaign_id")
    )


@dataclass(frozen=True)
class GroupResult:
    members: int
    conversions: int
    revenue: Decimal

    @property
    def conversion_rate(self) -> float | None:
        return self.conversions / self.members if self.members else None

    @property
    def revenue_per_member(self) -> Decimal | None:
        if not self.members:
            return None
        return (self.revenue / self.members).quantize(CENT)


@dataclass(frozen=True)
class CampaignResults:
    campaign: Campaign
    treatment: GroupResult
    control: GroupResult
    excluded: int
    uplift: Uplift
    points_cost: int
    cost: Decimal
    incremental_revenue: Decimal | None
    roi: Decimal | None
    currency: str

    def as_dict(self) -> dict:
        def group(g: GroupResult) -> dict:
            return {
                "members": g.members,
                "conversions": g.conversions,
                "conversion_rate": _round(g.conversion_rate),
                "revenue": str(g.revenue.quantize(CENT)),
                "revenue_per_member": _money(g.revenue_per_member),
            }

        return {
            "campaign": self.campaign.pk,
            "name": self.campaign.name,
            "status": self.campaign.status,
            "conversion_days": self.campaign.conversion_days,
            "currency": self.currency,
            "treatment": group(self.treatment),
            "control": group(self.control),
            "excluded": self.excluded,
            "uplift": {
                "difference": _round(self.uplift.difference),
                "ci95_low": _round(self.uplift.low),
                "ci95_high": _round(self.uplift.high),
                "method": "newcombe_hybrid_score",
                "wald_ci95_low": _round(self.uplift.wald_low),
                "wald_ci95_high": _round(self.uplift.wald_high),
                "significant": self.uplift.significant,
            },
            "points_cost": self.points_cost,
            "cost": str(self.cost),
            "incremental_revenue": _money(self.incremental_revenue),
            "roi": _money(self.roi),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _group_rows(campaign_ids: list[int], now: datetime) -> dict[tuple[int, str], tuple]:
    """(campaign, group) -> (members, conversions, revenue) in one SQL statement."""
    if not campaign_ids:
        return {}
    sends = CampaignSend._meta.db_table
    campaigns = Campaign._meta.db_table
    events = CustomerEvent._meta.db_table
    sql = f"""
        SELECT s.campaign_id, s."group", count(*),
               count(*) FILTER (WHERE p.revenue IS NOT NULL),
               coalesce(sum(p.revenue), 0)
        FROM {sends} s
        JOIN {campaigns} c ON c.id = s.campaign_id
        LEFT JOIN LATERAL (
            SELECT sum(coalesce(e.amount, 0)) AS revenue
            FROM {events} e
            WHERE e.member_id = s.member_id AND e.event_type = %s
              AND e.occurred_at >= s.assigned_at
              AND e.occurred_at < s.assigned_at + c.conversion_days * interval '1 day'
              AND e.occurred_at <= %s
            HAVING count(*) > 0
        ) p ON true
        WHERE s.campaign_id = ANY(%s) AND s.status IN (%s, %s)
        GROUP BY s.campaign_id, s."group"
    """  # noqa: S608 (table names come from the models)
    with connection.cursor() as cursor:
        cursor.execute(sql, [PURCHASE, now, campaign_ids, SendStatus.SENT, SendStatus.HELD_OUT])
        return {(row[0], row[1]): row[2:] for row in cursor.fetchall()}


def _excluded_counts(campaign_ids: list[int]) -> dict[int, int]:
    rows = (
        CampaignSend.objects.filter(campaign_id__in=campaign_ids)
        .exclude(status__in=[SendStatus.SENT, SendStatus.HELD_OUT, SendStatus.PENDING])
        .values("campaign_id")
        .annotate(n=Count("id"))
        .values_list("campaign_id", "n")
    )
    return dict(rows)


def campaign_results(
    campaigns: list[Campaign], *, now: datetime | None = None
) -> dict[int, CampaignResults]:
    """Results of many campaigns in a fixed number of queries."""
    now = now or timezone.now()
    program = program_settings()
    ids = [c.pk for c in campaigns]
    rows = _group_rows(ids, now)
    excluded = _excluded_counts(ids)
    out = {}
    for campaign in campaigns:
        groups = {}
        for group in (Group.TREATMENT, Group.CONTROL):
            members, conversions, revenue = rows.get((campaign.pk, group), (0, 0, Decimal("0")))
            groups[group] = GroupResult(members, conversions, Decimal(revenue))
        treatment, control = groups[Group.TREATMENT], groups[Group.CONTROL]
        cost = (Decimal(campaign.points_awarded) * program.cost_per_point).quantize(CENT)
        incremental = None
        if treatment.members and control.members:
            per_member = treatment.revenue / treatment.members - control.revenue / control.members
            incremental = (per_member * treatment.members).quantize(CENT)
        roi = None
        if incremental is not None and cost > 0:
            roi = ((incremental - cost) / cost).quantize(CENT)
        out[campaign.pk] = CampaignResults(
            campaign=campaign,
            treatment=treatment,
            control=control,
            excluded=excluded.get(campaign.pk, 0),
            uplift=uplift(
                treatment.conversions, treatment.members, control.conversions, control.members
            ),
            points_cost=campaign.points_awarded,
            cost=cost,
            incremental_revenue=incremental,
            roi=roi,
            currency=program.currency,
        )
    return out


def results_for(campaign: Campaign, *, now: datetime | None = None) -> CampaignResults:
    return campaign_results([campaign], now=now)[campaign.pk]


def launched_campaign_results(*, now: datetime | None = None) -> list[CampaignResults]:
    """The results of every campaign past its draft, newest first."""
    campaigns = list(
        Campaign.objects.exclude(status=CampaignStatus.DRAFT).select_related("segment")
    )
    results = campaign_results(campaigns, now=now)
    return [results[campaign.pk] for campaign in campaigns]


def export_campaigns(member: Member) -> list[dict]:
    """The campaigns the member was part of, for their data export (right of access)."""
    return [
        {
            "campaign": send.campaign.name,
            "group": send.group,
            "status": send.status,
            "assigned_at": send.assigned_at.isoformat(),
            "sent_at": send.sent_at.isoformat() if send.sent_at else None,
            "subject": send.subject,
        }
        for send in CampaignSend.objects.filter(member_id=member.pk)
        .select_related("campaign")
        .order_by("assigned_at", "id")
    ]
