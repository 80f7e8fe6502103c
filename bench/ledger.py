"""Ledger write throughput: awards through rewards.services.award_points beside plain
single-row INSERTs into a comparable table, in one process and in several, then a check that
every member's cached balance still equals the sum of their ledger.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/loyalty .venv/bin/python bench/ledger.py

DATABASE_URL only says which PostgreSQL server to use: the benchmark works in its own database
(loyalty_bench unless --database says otherwise), creates and migrates it, and empties its
members and ledger at the start of every run. See bench/README.md.
"""

import argparse
import multiprocessing as mp
import os
import platform
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PLAIN_TABLE = "bench_plain_insert"
TIERS = [("Bronze", 1, 0), ("Silver", 2, 1000), ("Gold", 3, 3000)]

# Filled in by main() before the worker processes are forked.
MEMBER_IDS: list[int] = []
ASSIGNMENTS: list[int] = []


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--awards", type=int, default=2000, help="awards (and inserts) per phase")
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4, help="processes in the parallel phase")
    parser.add_argument("--database", default="loyalty_bench", help="emptied on every run")
    return parser.parse_args()


def bench_url(url: str, database: str) -> str:
    parts = urlparse(url)
    if not parts.scheme.startswith("postgres"):
        sys.exit("DATABASE_URL must point at PostgreSQL (postgres://user@host:port/db).")
    return urlunparse(parts._replace(path=f"/{database}"))


def create_database(url: str) -> bool:
    import psycopg2
    from psycopg2 import sql

    parts = urlparse(url)
    conn = psycopg2.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname="postgres",
    )
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            name = parts.path.lstrip("/")
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cur.fetchone() is not None:
                return False
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    finally:
        conn.close()


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "loyalty_site.settings"
    os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    os.environ["CELERY_BROKER_URL"] = ""  # tasks (welcome emails) run in-process
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def prepare(members: int) -> list[int]:
    """Migrate, empty the previous run's data, create tiers, members and the plain table."""
    from django.core.management import call_command
    from django.db import connection

    from members.models import Channel
    from members.services import enroll_member
    from rewards.models import Tier
    from rewards.selectors import program_settings

    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cur:
        cur.execute(
            f"""
            CREATE TABLE IF NOT EXISTS {PLAIN_TABLE} (
                id bigserial PRIMARY KEY,
                member_id bigint NOT NULL REFERENCES members_member (id),
                points integer NOT NULL,
                balance_after integer NOT NULL,
                reason varchar(255) NOT NULL,
                idempotency_key varchar(200) NOT NULL UNIQUE,
                created_at timestamptz NOT NULL DEFAULT now()
            )"""
        )
        cur.execute(
            f"CREATE INDEX IF NOT EXISTS {PLAIN_TABLE}_member "
            f"ON {PLAIN_TABLE} (member_id, created_at DESC)"
        )
        # CASCADE empties every table that points at members: accounts, ledger, buckets, ...
        cur.execute(
            "TRUNCATE members_member, auth_user, journeys_stagetransition RESTART IDENTITY CASCADE"
        )
    program_settings()
    for name, rank, threshold in TIERS:
        Tier.objects.update_or_create(
            name=name, defaults={"rank": rank, "points_threshold": threshold}
        )
    ids = []
    for n in range(members):
        member, _ = enroll_member(channel=Channel.API, external_id=f"bench-{n}")
        ids.append(member.pk)
    return ids


# -- the work each process does ------------------------------------------------------------------


def award_work(indexes: range, prefix: str) -> Iterator[None]:
    from members.models import Member
    from rewards.services import award_points

    members = {m.pk: m for m in Member.objects.filter(pk__in=MEMBER_IDS)}
    yield  # ready: connection open, members loaded
    for i in indexes:
        award_points(
            member=members[MEMBER_IDS[ASSIGNMENTS[i]]],
            points=1 + i % 50,
            reason=f"Bench purchase {i}",
            idempotency_key=f"{prefix}:{i}",
            source="bench",
            source_ref=str(i),
        )


def insert_work(indexes: range, prefix: str) -> Iterator[None]:
    from django.db import connection

    cur = connection.cursor()
    cur.execute("SELECT 1")
    yield
    sql = (
        f"INSERT INTO {PLAIN_TABLE} (member_id, points, balance_after, reason, idempotency_key) "
        "VALUES (%s, %s, %s, %s, %s)"
    )
    for i in indexes:  # autocommit: one transaction per row, like one award
        cur.execute(
            sql,
            [MEMBER_IDS[ASSIGNMENTS[i]], 1 + i % 50, 0, f"Bench purchase {i}", f"{prefix}:{i}"],
        )


WORK = {"award": award_work, "insert": insert_work}


def _worker(kind: str, indexes: range, prefix: str, barrier, results) -> None:
    steps = WORK[kind](indexes, prefix)
    next(steps)
    barrier.wait()
    start = time.monotonic()
    for _ in steps:
        pass
    results.put((start, time.monotonic(), len(indexes)))


def run_phase(kind: str, total: int, workers: int, prefix: str) -> float:
    """Run `total` operations split over `workers` forked processes; returns operations/s,
    timed from the moment all of them are ready to the moment the last one finishes."""
    from django.db import connections

    connections.close_all()  # children open their own connections
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(workers)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(kind, range(w, total, workers), prefix, barrier, results))
        for w in range(workers)
    ]
    for proc in procs:
        proc.start()
    rows = [results.get() for _ in procs]
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            sys.exit(f"a {kind} worker failed (exit code {proc.exitcode})")
    elapsed = max(end for _, end, _ in rows) - min(start for start, _, _ in rows)
    return sum(count for _, _, count in rows) / elapsed


# -- checks --------------------------------------------------------------------------------------


def check(expected_awards: int, expected_points: int) -> bool:
    from django.db.models import Sum

    from members.models import Member
    from rewards.models import PointsAccount, PointsTransaction
    from rewards.services import check_ledger

    sums = dict(
        PointsTransaction.objects.values("member_id")
        .annotate(total=Sum("points"))
        .values_list("member_id", "total")
    )
    accounts = dict(PointsAccount.objects.values_list("member_id", "balance"))
    members = list(Member.objects.all())
    mismatched = [m.pk for m in members if accounts.get(m.pk, 0) != (sums.get(m.pk) or 0)]
    deeper = [m.pk for m in members if check_ledger(m)]  # pending and buckets agree too
    awards = PointsTransaction.objects.filter(source="bench").count()
    points = PointsTransaction.objects.filter(source="bench").aggregate(s=Sum("points"))["s"]
    ok = not mismatched and not deeper and awards == expected_awards and points == expected_points
    print(
        f"ledger check: {len(members) - len(mismatched)} of {len(members)} members have "
        f"balance == sum(ledger); buckets and pending agree for "
        f"{len(members) - len(deeper)} of {len(members)}"
    )
    print(
        f"              {awards} award rows for {expected_awards} awards, "
        f"{points} points for {expected_points} expected: {'OK' if ok else 'FAILED'}"
    )
    return ok


def replay(keys: int, prefix: str) -> int:
    """Send already used keys again; returns how many new ledger rows that made (must be 0)."""
    from rewards.models import PointsTransaction

    before = PointsTransaction.objects.count()
    for _ in award_work(range(keys), prefix):
        pass
    return PointsTransaction.objects.count() - before


def main() -> None:
    args = parse_args()
    base = os.environ.get("DATABASE_URL", "")
    if not base:
        sys.exit("Set DATABASE_URL to a PostgreSQL server, e.g. postgres://postgres@127.0.0.1/x")
    url = bench_url(base, args.database)
    started = time.monotonic()
    created = create_database(url)
    setup_django(url)
    from django.db import connection

    MEMBER_IDS[:] = prepare(args.members)
    rng = random.Random(42)
    ASSIGNMENTS[:] = [rng.randrange(args.members) for _ in range(args.awards)]
    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        server = cur.fetchone()[0]
    print(
        f"PostgreSQL {server}, database {args.database}{' (created)' if created else ''}; "
        f"{args.members} members; {args.awards} operations per phase; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )

    n, w = args.awards, args.workers
    rates = {
        ("award", 1): run_phase("award", n, 1, "p1"),
        ("award", w): run_phase("award", n, w, f"p{w}"),
        ("insert", 1): run_phase("insert", n, 1, "i1"),
        ("insert", w): run_phase("insert", n, w, f"i{w}"),
    }
    labels = {
        "award": "awards via rewards.services.award_points",
        "insert": f"plain single-row INSERT into {PLAIN_TABLE}",
    }
    for (kind, workers), rate in rates.items():
        procs = f"{workers} process{'es' if workers > 1 else ''}"
        print(f"{labels[kind]:<50} {procs:>12}: {rate:9.0f} /s")
    for workers in (1, w):
        ratio = rates[("award", workers)] / rates[("insert", workers)]
        print(
            f"ratio awards/inserts, {workers} process{'es' if workers > 1 else ''}: "
            f"{ratio:.3f} (one award costs about {1 / ratio:.1f} plain inserts)"
        )

    new_rows = replay(min(200, n), "p1")
    print(f"idempotency: {min(200, n)} keys sent again made {new_rows} new ledger rows")
    expected_points = 2 * sum(1 + i % 50 for i in range(n))
    ok = check(expected_awards=2 * n, expected_points=expected_points) and new_rows == 0
    print(f"total time {time.monotonic() - started:.1f} s")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
