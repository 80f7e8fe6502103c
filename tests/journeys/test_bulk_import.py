"""The set-based import: the SQL stage replay for new members gives the same journeys as the
Python engine, and the COPY fast path validates exactly like the row-by-row path."""

import random
from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from journeys.models import CustomerEvent, MemberJourney, StageTransition
from members.models import Member

from .factories import MemberFactory


def history(seed: int, customers: int) -> list[tuple[int, str, str]]:
    """Purchases with gaps long enough for at risk and lapsed, and bursts for repeat/loyal."""
    rng = random.Random(seed)
    rows = []
    for customer in range(customers):
        day = date(2019, 1, 1) + timedelta(days=rng.randrange(300))
        for _ in range(rng.randrange(1, 12)):
            rows.append((customer, day.strftime("%Y%m%d"), f"{rng.randint(100, 9000) / 100:.2f}"))
            day += timedelta(days=rng.choice([0, 1, 5, 30, 95, 200, 365, 366]))
    return rows


def journey_of(member):
    moves = [
        (
            t.from_stage.slug if t.from_stage else None,
            t.to_stage.slug,
            t.cause,
            t.rule_id,
            t.at,
            t.event.occurred_at if t.event else None,
        )
        for t in StageTransition.objects.filter(member=member)
        .select_related("from_stage", "to_stage", "event")
        .order_by("at", "id")
    ]
    journey = MemberJourney.objects.get(member=member)
    return moves, (
        journey.stage_id,
        journey.entered_at,
        journey.last_activity_at,
        journey.last_lifecycle_stage_id,
    )


@pytest.mark.django_db
def test_sql_replay_for_new_members_matches_the_python_engine(tmp_path):
    rows = history(7, 40)
    # "old-" customers exist already (no journey yet): the Python engine replays them; "new-"
    # customers are enrolled by the import: the SQL replay does.
    for customer in {c for c, _, _ in rows}:
        MemberFactory(external_id=f"old-{customer}")
    path = tmp_path / "orders.csv"
    with open(path, "w") as handle:
        for prefix in ("old", "new"):
            for customer, day, amount in rows:
                handle.write(f"{prefix}-{customer},{day},{amount}\n")

    call_command("import_transactions", str(path), date_format="%Y%m%d", no_points=True)

    members = {m.external_id: m for m in Member.objects.all()}
    compared = 0
    for customer in {c for c, _, _ in rows}:
        old, new = members[f"old-{customer}"], members[f"new-{customer}"]
        assert journey_of(new) == journey_of(old)
        compared += len(journey_of(new)[0])
    assert compared > 100
    assert StageTransition.objects.filter(cause="inactivity").exists()
    assert StageTransition.objects.filter(cause="returned").exists()


def run(path, *args) -> str:
    out = StringIO()
    call_command("import_transactions", str(path), "--no-progress", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_fast_path_reports_each_bad_row_like_the_exact_path(tmp_path):
    content = (
        "customer_id,date,amount,order_id,channel\n"
        "C1,2024-03-01,10.00,A-1,web\n"
        "C2,2024-13-01,10.00,A-2,web\n"
        "C3,2024-03-02,-4.00,A-3,store\n"
        "C4,2024-03-02,abc,A-4,Store\n"
        ",2024-03-02,5.00,A-5,store\n"
        "C6,2024-03-02,5.123,A-6,fax\n"
        "C7,2999-01-01,5.00,A-7,web\n"
    )
    fast = tmp_path / "fast.csv"
    fast.write_text(content)
    exact = tmp_path / "exact.csv"
    exact.write_text(content + "\n")  # a blank line: the fast path hands over to the exact one

    messages = []
    for path in (fast, exact):
        err = StringIO()
        with pytest.raises(CommandError, match="6 bad row"):
            call_command("import_transactions", str(path), "--no-progress", stderr=err)
        messages.append(err.getvalue().splitlines())

    assert messages[0] == messages[1]
    assert messages[0][0] == "line 3: date '2024-13-01' does not match YYYY-MM-DD or YYYYMMDD"
    assert (
        "line 7: amount 5.123 has more than 2 decimals or is too large; channel 'fax'"
        in (messages[0][4])
    )
    assert CustomerEvent.objects.count() == 0


@pytest.mark.django_db
def test_quoted_fields_and_unusual_amounts_import_the_same_on_both_paths(tmp_path):
    content = 'customer_id,date,amount,order_id\n"C,1",2024-03-01,1e1,"O,1"\nC2,2024-03-02, 7.5 ,\n'
    fast = tmp_path / "fast.csv"
    fast.write_text(content)
    assert "2 rows: 2 events added" in run(fast)
    keys = sorted(CustomerEvent.objects.values_list("idempotency_key", "amount"))

    quoted_newline = tmp_path / "multi.csv"
    quoted_newline.write_text(content + 'C3,2024-03-03,1.00,"line\nbreak"\n')
    assert "3 rows: 1 events added, 2 already imported" in run(quoted_newline)

    assert keys == [
        ("import:C,1:O,1", 10),
        ("import:C2:20240301T230000:7.50:1", 7.5),
    ]


@pytest.mark.django_db
def test_the_service_takes_lines_with_or_without_line_breaks():
    from journeys.services import import_transactions

    bare = ["customer_id,date,amount", "X1,2024-01-01,5.00", "X2,2024-01-02,6.00"]
    first = import_transactions(lines=bare, award_points=False)
    again = import_transactions(lines=[line + "\n" for line in bare], award_points=False)

    assert (first.rows, first.created, first.members_enrolled) == (2, 2, 2)
    assert (again.rows, again.created, again.duplicates) == (2, 0, 2)
