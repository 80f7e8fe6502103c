"""Dashboards over the members' figures of the latest run (MemberMetrics): lifetime value, churn
risk, and value by journey stage. Aggregates over every member are cached per run."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from django.core.paginator import Paginator
from django.db.models import Avg, Count, F, IntegerField, Q, Sum, Value
from django.db.models.functions import Coalesce, Floor

from members.models import Channel

from ..models import ChurnRisk, MemberMetrics, RfmSegment
from .base import (
    HISTOGRAM_BINS,
    TOP_MEMBERS,
    AsOf,
    Column,
    Dashboard,
    Table,
    bar_chart,
    cached_for_run,
    materialised,
    member_metrics_note,
    members_chart,
    metrics_run,
)

# ---------------------------------------------------------------------------- lifetime value


def _nice_width(span: float, bins: int) -> Decimal:
    """A round bin width (1, 2, 2.5 or 5 times a power of ten) covering span in ~bins bins."""
    if span <= 0:
        return Decimal(1)
    raw = span / bins
    magnitude = Decimal(10) ** (len(str(int(raw))) - 1) if raw >= 1 else Decimal("0.01")
    for step in (1, 2, Decimal("2.5"), 5, 10):
        if magnitude * step >= Decimal(str(raw)):
            return magnitude * step
    return magnitude * 10


def clv_histogram(metrics) -> list[dict]:
    """Counts of members by 12-month CLV bin, bins up to the 99th percentile and one open bin
    above: three queries (count, the percentile read from the top of the CLV index, grouped
    counts)."""
    scored = metrics.filter(clv_12m__isnull=False)
    total = scored.count()
    if not total:
        return []
    cap = scored.order_by("-clv_12m").values_list("clv_12m", flat=True)[int(total * 0.01)]
    width = _nice_width(float(cap), HISTOGRAM_BINS)
    last_bin = int(cap / width)
    grouped = (
        scored.annotate(bin=Floor(F("clv_12m") / width, output_field=IntegerField()))
        .values("bin")
        .annotate(members=Count("pk"))
        .order_by("bin")
    )
    counts: dict[int, int] = defaultdict(int)
    for row in grouped:
        counts[min(int(row["bin"]), last_bin + 1)] += row["members"]
    bins = []
    for index in range(0, last_bin + 2):
        low = width * index
        label = f"{low:,.0f}–{low + width:,.0f}" if index <= last_bin else f"≥ {low:,.0f}"
        bins.append({"bin": label, "low": low, "members": counts.get(index, 0)})
    return bins


def _grouped_clv(metrics, key: str) -> list[dict]:
    return list(
        metrics.values(group=F(key))
        .annotate(
            members=Count("pk"),
            average_clv=Avg("clv_12m"),
            total_clv=Coalesce(Sum("clv_12m"), Decimal(0)),
            average_p_alive=Avg("p_alive"),
        )
        .order_by("-total_clv")
    )


def _clv_table(name: str, title: str, rows: list[dict], labels: dict, currency: str) -> Table:
    return Table(
        name=name,
        title=title,
        columns=[
            Column("group", title.split(" by ")[-1].capitalize()),
            Column("members", "Members", "int"),
            Column("average_clv", "Average CLV (12 months)", "money"),
            Column("total_clv", "Total CLV (12 months)", "money"),
            Column("average_p_alive", "Average P(alive)", "percent"),
        ],
        rows=materialised(
            [{**row, "group": labels.get(row["group"], row["group"] or "None")} for row in rows]
        ),
        currency=currency,
    )


def lifetime_value(as_of: AsOf, *, currency: str) -> Dashboard:
    board = Dashboard(as_of=as_of)
    run = metrics_run()
    metrics = MemberMetrics.objects.all()
    bins = cached_for_run(run, "clv_histogram", lambda: clv_histogram(metrics))
    board.charts["distribution"] = members_chart("Members by 12-month CLV", bins, "bin")
    board.add_table(
        Table(
            name="distribution",
            title="CLV distribution",
            columns=[
                Column("bin", f"CLV (12 months, {currency})"),
                Column("low", "From", "money"),
                Column("members", "Members", "int"),
            ],
            rows=materialised(bins),
            currency=currency,
        )
    )
    top = member_rows(
        metrics.filter(clv_12m__isnull=False).order_by("-clv_12m", "member_id")[:TOP_MEMBERS]
    )
    board.add_table(
        Table(
            name="top",
            title="Top members",
            columns=[
                Column("member_number", "Member"),
                Column("name", "Name", "user"),
                Column("tier", "Tier"),
                Column("rfm_segment", "RFM segment"),
                Column("clv_12m", "CLV (12 months)", "money"),
                Column("p_alive", "P(alive)", "percent"),
                Column("expected_purchases_12m", "Expected purchases (12 months)", "number"),
                Column("total_spend", "Spend to date", "money"),
            ],
            rows=lambda: top,
            currency=currency,
        )
    )
    by_tier, by_segment, by_channel = (
        cached_for_run(run, f"clv_by:{key}", lambda key=key: _grouped_clv(metrics, key))
        for key in (
            "member__points_account__tier__name",
            "rfm_segment",
            "member__enrollment_channel",
        )
    )
    rfm_labels = dict(RfmSegment.choices)
    for name, title, rows, labels in (
        ("by_tier", "CLV by tier", by_tier, {None: "No tier"}),
        ("by_segment", "CLV by RFM segment", by_segment, rfm_labels),
        ("by_channel", "CLV by enrollment channel", by_channel, dict(Channel.choices)),
    ):
        table = board.add_table(_clv_table(name, title, rows, labels, currency))
        board.charts[name] = bar_chart(f"Average {title} ({currency})", table.rows(), "average_clv")
    board.extra["note"] = member_metrics_note(as_of, run)
    return board


MEMBER_ROW_FIELDS = {
    "member_id": "member_id",
    "member_number": "member__member_number",
    "first_name": "member__first_name",
    "last_name": "member__last_name",
    "tier": "member__points_account__tier__name",
    "rfm_segment": "rfm_segment",
    "churn_risk": "churn_risk",
    "clv_12m": "clv_12m",
    "p_alive": "p_alive",
    "expected_purchases_12m": "expected_purchases_12m",
    "total_spend": "total_spend",
    "last_purchase_on": "last_purchase_on",
}


def member_rows(metrics, *, chunk_size: int | None = None) -> Iterable[dict]:
    """Members' figures as plain rows (values, not model instances: a CSV of a few hundred
    thousand members streams several times faster). A list, or with chunk_size a generator
    over a server-side cursor."""
    rfm_labels, risk_labels = dict(RfmSegment.choices), dict(ChurnRisk.choices)
    values = metrics.values(*MEMBER_ROW_FIELDS.values())
    source = values.iterator(chunk_size=chunk_size) if chunk_size else values

    def rows():
        for row in source:
            out = {key: row[column] for key, column in MEMBER_ROW_FIELDS.items()}
            out["name"] = f"{out.pop('first_name')} {out.pop('last_name')}".strip()
            out["tier"] = out["tier"] or ""
            out["rfm_segment"] = rfm_labels.get(out["rfm_segment"], out["rfm_segment"])
            out["churn_risk"] = risk_labels.get(out["churn_risk"], out["churn_risk"])
            yield out

    return rows() if chunk_size else list(rows())


# ---------------------------------------------------------------------------- churn risk


def churn_risk(
    as_of: AsOf, *, currency: str, band: str, page_size: int, page_number: str | None = None
) -> Dashboard:
    board = Dashboard(as_of=as_of)
    run = metrics_run()
    bands = cached_for_run(
        run,
        "churn_bands",
        lambda: {
            row["churn_risk"]: row
            for row in MemberMetrics.objects.values("churn_risk").annotate(
                members=Count("pk"), clv=Coalesce(Sum("clv_12m"), Decimal(0))
            )
        },
    )
    band_rows = [
        {
            "band": ChurnRisk(value).label,
            "members": bands.get(value, {}).get("members", 0),
            "clv": bands.get(value, {}).get("clv", Decimal(0)),
        }
        for value, _ in ChurnRisk.choices
    ]
    board.charts["bands"] = members_chart("Members by churn risk", band_rows, "band")
    board.add_table(
        Table(
            name="bands",
            title="Churn risk bands",
            columns=[
                Column("band", "Churn risk"),
                Column("members", "Members", "int"),
                Column("clv", "CLV at stake (12 months)", "money"),
            ],
            rows=materialised(band_rows),
            currency=currency,
        )
    )
    at_risk = MemberMetrics.objects.filter(churn_risk=band).order_by(
        F("clv_12m").desc(nulls_last=True), "p_alive", "member_id"
    )
    page = Paginator(at_risk, page_size).get_page(page_number)
    board.extra.update(band=band, page=page)
    board.add_table(
        Table(
            name="members",
            title=f"{ChurnRisk(band).label} churn risk, highest value first",
            columns=[
                Column("member_number", "Member"),
                Column("name", "Name", "user"),
                Column("tier", "Tier"),
                Column("rfm_segment", "RFM segment"),
                Column("clv_12m", "CLV (12 months)", "money"),
                Column("p_alive", "P(alive)", "percent"),
                Column("last_purchase_on", "Last purchase", "date"),
                Column("total_spend", "Spend to date", "money"),
            ],
            rows=lambda: member_rows(at_risk, chunk_size=5000),
            display=lambda: member_rows(page.object_list),
            currency=currency,
        )
    )
    board.extra["note"] = member_metrics_note(as_of, run)
    return board


# ---------------------------------------------------------------------------- journey


def journey(as_of: AsOf, *, currency: str) -> Dashboard:
    """Members by current journey stage with their average value: reads the pipeline's member
    figures and the journey's current-stage rows (not events); the full map is
    journeys' own page."""
    board = Dashboard(as_of=as_of)
    run = metrics_run()
    rows = cached_for_run(run, "journey_stages", _stage_rows)
    board.charts["stages"] = members_chart("Members by journey stage", rows, "stage")
    board.add_table(
        Table(
            name="stages",
            title="Journey stages",
            columns=[
                Column("stage", "Stage"),
                Column("members", "Members", "int"),
                Column("average_clv", "Average CLV (12 months)", "money"),
                Column("average_p_alive", "Average P(alive)", "percent"),
                Column("high_risk", "High churn risk", "int"),
            ],
            rows=materialised(rows),
            currency=currency,
        )
    )
    board.extra["note"] = member_metrics_note(as_of, run)
    return board


def _stage_rows() -> list[dict]:
    return list(
        MemberMetrics.objects.values(
            stage=Coalesce(F("member__journey__stage__name"), Value("No stage")),
            order=F("member__journey__stage__order"),
        )
        .annotate(
            members=Count("pk"),
            average_clv=Avg("clv_12m"),
            average_p_alive=Avg("p_alive"),
            high_risk=Count("pk", filter=Q(churn_risk=ChurnRisk.HIGH)),
        )
        .order_by(F("order").asc(nulls_last=True))
    )
