"""`manage.py import_transactions`: bulk history import, all or nothing, idempotent."""

from datetime import datetime
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from journeys.models import CustomerEvent, EventSource, MemberJourney, StageTransition
from members.models import Channel, Member
from rewards.models import PointsTransaction, Purchase
from tests.rewards.helpers import assert_consistent, balance

from .factories import EarningRuleFactory, MemberFactory

AMS = ZoneInfo("Europe/Amsterdam")


def run(path, *args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_transactions", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def cdnow_file(tmp_path):
    """The CDNOW sample's shape: customer id, date YYYYMMDD, amount; no header."""
    path = tmp_path / "cdnow.csv"
    path.write_text(
        "00001,19970101,11.77\n"
        "00002,19970112,12.00\n"
        "00002,19970112,77.00\n"
        "00003,19970102,20.76\n"
        "00003,19970330,20.76\n"
        "00003,19970402,19.54\n"
        "00003,19971115,57.45\n"
        "00003,19971125,20.96\n"
        "00003,19980528,16.99\n"
        "00004,19970101,29.33\n"
        "00004,19970101,29.33\n"  # the same purchase twice in one day: both kept
    )
    return path


@pytest.mark.django_db
def test_import_enrolls_customers_adds_events_awards_points_and_builds_stages(cdnow_file):
    EarningRuleFactory(points_per_unit=Decimal("1"))

    out, err = run(cdnow_file, "--date-format", "%Y%m%d", "--batch-size", "3")

    assert "11 rows: 11 events added" in out
    assert "4 members enrolled" in out
    assert "importing" in err  # the progress bar
    members = {m.external_id: m for m in Member.objects.all()}
    assert set(members) == {"00001", "00002", "00003", "00004"}
    three = members["00003"]
    assert three.enrollment_channel == Channel.IMPORT
    assert three.enrolled_at == datetime(1997, 1, 2, tzinfo=AMS)
    assert three.email is None
    events = CustomerEvent.objects.filter(member=three).order_by("occurred_at")
    assert [e.amount for e in events] == [
        Decimal(v) for v in ("20.76", "20.76", "19.54", "57.45", "20.96", "16.99")
    ]
    assert {(e.event_type, e.source, e.currency) for e in events} == {
        ("purchase", EventSource.IMPORT, "EUR")
    }
    assert [e.points_awarded for e in events] == [20, 20, 19, 57, 20, 16]
    assert balance(three) == 152
    assert Purchase.objects.filter(member=three).count() == 6
    assert CustomerEvent.objects.filter(member=members["00004"]).count() == 2
    assert balance(members["00004"]) == 58
    for member in members.values():
        assert_consistent(member)
    # 00003 bought 3 times within a year, then went quiet: repeat, at risk, back, ... lapsed.
    steps = [
        t.to_stage.slug
        for t in StageTransition.objects.filter(member=three).select_related("to_stage")
    ]
    assert steps[:2] == ["first-purchase", "repeat"]
    assert "at-risk" in steps
    assert MemberJourney.objects.get(member=three).stage.slug == "lapsed"


@pytest.mark.django_db
def test_importing_the_same_file_again_adds_nothing(cdnow_file):
    EarningRuleFactory(points_per_unit=Decimal("1"))
    run(cdnow_file, "--date-format", "%Y%m%d")
    counts = (
        Member.objects.count(),
        CustomerEvent.objects.count(),
        PointsTransaction.objects.count(),
        StageTransition.objects.count(),
    )

    out, _ = run(cdnow_file, "--date-format", "%Y%m%d")

    assert "0 events added, 11 already imported" in out
    assert "0 members enrolled" in out
    assert (
        Member.objects.count(),
        CustomerEvent.objects.count(),
        PointsTransaction.objects.count(),
        StageTransition.objects.count(),
    ) == counts


@pytest.mark.django_db
def test_bad_rows_are_reported_by_line_and_nothing_is_written(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "customer_id,date,amount,order_id,channel\n"
        "C1,2024-03-01,10.00,A-1,web\n"
        "C2,2024-13-01,10.00,A-2,web\n"
        "C3,2024-03-02,-4.00,A-3,store\n"
        "C4,2024-03-02,abc,A-4,store\n"
        ",2024-03-02,5.00,A-5,store\n"
        "C6,2024-03-02,5.00,A-6,fax\n"
        "C7,2999-01-01,5.00,A-7,web\n"
        "C8,2024-03-02\n"
        "C9,2024-03-03,7.50,A-9,web\n"
    )

    with pytest.raises(CommandError, match="7 bad row"):
        run(path)

    assert Member.objects.count() == 0
    assert CustomerEvent.objects.count() == 0
    assert PointsTransaction.objects.count() == 0


@pytest.mark.django_db
def test_bad_row_messages_name_the_line_and_the_problem(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,date,amount\nC1,2024-03-01,10.00\nC2,01/03/2024,-1\n")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_transactions", str(path), "--no-progress", stderr=err)
    assert err.getvalue().splitlines() == [
        "line 3: date '01/03/2024' does not match YYYY-MM-DD or YYYYMMDD; amount -1 is negative"
    ]


@pytest.mark.django_db
def test_no_points_writes_history_only_and_known_customers_are_reused(tmp_path):
    EarningRuleFactory(points_per_unit=Decimal("1"))
    known = MemberFactory(external_id="CRM-1")
    path = tmp_path / "orders.csv"
    path.write_text(
        "date,amount,customer_id,order_id\n"
        "2024-05-01T10:30:00+02:00,100.00,CRM-1,O-1\n"
        "2024-05-03T10:30:00+02:00,50.00,CRM-2,O-2\n"
        "2024-05-04T10:30:00+02:00,50.00,CRM-2,O-2\n"  # the same order again: once
    )

    out, _ = run(path, "--no-points")

    assert "3 rows: 2 events added, 1 already imported; 1 members enrolled" in out
    assert CustomerEvent.objects.get(member=known).order_id == "O-1"
    assert PointsTransaction.objects.count() == 0
    assert Purchase.objects.count() == 0
    assert MemberJourney.objects.get(member=known).stage.slug == "lapsed"


@pytest.mark.django_db
def test_import_does_not_award_an_order_the_api_already_recorded(tmp_path):
    from django.utils import timezone

    from journeys.services import ingest_event

    EarningRuleFactory(points_per_unit=Decimal("1"))
    member = MemberFactory(external_id="CRM-9")
    ingest_event(
        member=member,
        event_type="purchase",
        occurred_at=timezone.now(),
        idempotency_key="shop-O-9",
        amount=Decimal("40.00"),
        order_id="O-9",
    )
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,date,amount,order_id\nCRM-9,2024-05-01,40.00,O-9\n")

    run(path)

    assert balance(member) == 40
    assert_consistent(member)


def _planner_rows(model) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table]
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_an_import_that_grows_the_events_table_refreshes_the_planners_statistics(tmp_path):
    from django.db import connection

    with connection.cursor() as cursor:  # the planner believes the events table is big
        cursor.execute(
            "UPDATE pg_class SET reltuples = 1000 WHERE oid = 'journeys_customerevent'::regclass"
        )
    small = tmp_path / "small.csv"
    small.write_text("customer_id,date,amount\nA,2024-05-01,10.00\n")
    run(small, "--no-points")  # a tenth of the table or less: left to autovacuum
    assert _planner_rows(CustomerEvent) == 1000

    big = tmp_path / "big.csv"
    big.write_text(
        "customer_id,date,amount\n"
        + "".join(f"C{n % 40},2024-05-{1 + n % 28:02d},{n}.00\n" for n in range(300))
    )
    run(big, "--no-points")

    assert _planner_rows(CustomerEvent) == CustomerEvent.objects.count() == 301
    assert _planner_rows(Member) == Member.objects.count()
    assert _planner_rows(StageTransition) == StageTransition.objects.count()


@pytest.mark.django_db
def test_an_import_drops_the_staging_tables_of_stopped_imports_only(tmp_path, settings):
    import psycopg2
    from django.db import connection

    left = "journeys_import_keyed_0000dead0000"  # its import was killed: nobody holds it
    running = "journeys_import_keyed_00001ive0000"  # another import is working on it
    with connection.cursor() as cursor:
        for name in (left, running):
            cursor.execute(f"CREATE UNLOGGED TABLE {name} (line bigint)")
    params = connection.get_connection_params()
    other = psycopg2.connect(**params)  # another session, holding the running import's lock
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", [running])
        path = tmp_path / "orders.csv"
        path.write_text("customer_id,date,amount\nA,2024-05-01,10.00\n")

        run(path, "--no-points")

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'journeys_import_keyed%%'"
            )
            assert [row[0] for row in cursor.fetchall()] == [running]
            cursor.execute(  # this session holds no import's lock afterwards
                "SELECT count(*) FROM pg_locks "
                "WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            )
            assert cursor.fetchone()[0] == 0
    finally:
        other.close()
