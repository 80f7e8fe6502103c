"""The published CDNOW fit (Fader, Hardie and Lee 2005) reproduced end to end: the sample that
ships with the lifetimes package goes through the transaction import and the nightly command."""

from collections import Counter
from decimal import Decimal
from pathlib import Path

import lifetimes
import pytest
from django.core.management import call_command

from analytics.models import (
    ChurnRisk,
    ClvBand,
    FitModel,
    MemberMetrics,
    ModelFit,
    PipelineRun,
    RfmSegment,
    RunStatus,
)
from journeys.models import CustomerEvent

CDNOW = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_sample.txt"

PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


def cdnow_csv(path: Path) -> Path:
    """CDNOW_sample.txt rows are `id in the master file, id in the sample (1..2357), YYYYMMDD,
    CDs, amount`; the sample id is the published summary's ID."""
    lines = ["customer_id,date,amount"]
    for row in CDNOW.read_text().splitlines():
        if row.strip():
            _, customer, day, _, amount = row.split()
            lines.append(f"{int(customer)},{day},{amount}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.django_db
def test_cdnow_import_and_run_reproduce_the_published_bgnbd_fit(tmp_path):
    csv = cdnow_csv(tmp_path / "cdnow.csv")
    call_command(
        "import_transactions", str(csv), date_format="%Y%m%d", no_points=True, no_progress=True
    )
    assert CustomerEvent.objects.filter(event_type="purchase").count() == 6919

    call_command("run_nightly", as_of="1997-09-30")

    run = PipelineRun.objects.get()
    assert run.status == RunStatus.SUCCEEDED, run.error
    fit = ModelFit.objects.get(as_of=run.as_of, model=FitModel.BG_NBD)
    assert fit.n_customers == 2357
    assert fit.time_unit == "week"
    assert fit.converged
    for name, published in PUBLISHED_BGNBD.items():
        assert fit.params[name] == pytest.approx(published, rel=0.01), name
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.5)

    spend = ModelFit.objects.get(as_of=run.as_of, model=FitModel.GAMMA_GAMMA)
    assert spend.converged and spend.n_customers > 0

    # Customer 1 of the published summary: 2 repeat purchase days, recency 30.43 weeks, T 38.86.
    first = MemberMetrics.objects.get(member__external_id="1")
    assert (first.frequency, first.recency_days, first.tenure_days) == (2, 213, 272)
    assert first.purchase_days == 3
    assert first.p_alive is not None and 0 < first.p_alive <= 1
    assert first.clv_12m is not None and first.clv_12m > Decimal("0")
    assert MemberMetrics.objects.filter(purchase_days__gt=0).count() == 2357

    # CLV bands by rank: the top 10 % (ties share the higher band), nobody left unbanded.
    bands = Counter(MemberMetrics.objects.values_list("clv_band", flat=True))
    assert 236 <= bands[ClvBand.TOP] <= 260
    assert bands[ClvBand.NONE] == 0
    assert sum(bands.values()) == 2357
    # Every purchaser has an RFM segment and a churn band; many customers of this 1997 cohort
    # have not bought for months by 30 September.
    segments = Counter(MemberMetrics.objects.values_list("rfm_segment", flat=True))
    assert segments[RfmSegment.NO_PURCHASE] == 0
    assert segments[RfmSegment.CHAMPIONS] > 0 and segments[RfmSegment.LOST] > 0
    assert MemberMetrics.objects.filter(churn_risk=ChurnRisk.LAPSED).count() > 1000
