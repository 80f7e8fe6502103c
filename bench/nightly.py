"""The nightly analytics pipeline at scale: 1,000,000 members and about 10,000,000 purchases
generated in PostgreSQL, one run timed (wall time and peak memory against the targets), then
the same BG/NBD fit timed with the reference library (lifetimes) on the same summary.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x .venv/bin/python bench/nightly.py

DATABASE_URL only says which PostgreSQL server to use: the benchmark works in its own database
(loyalty_bench_nightly unless --database says otherwise), creates and migrates it, and replaces
its members and events whenever the sizes asked for differ from what is there. See
bench/README.md.
"""

import argparse
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.create_database import main as create_database  # noqa: E402

TARGET_SECONDS = 180
TARGET_MEMORY_GB = 4.0
HISTORY_DAYS = 3 * 365
WEEK_SECONDS = 7 * 86400


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--purchases", type=int, default=10_000_000)
    parser.add_argument("--database", default="loyalty_bench_nightly")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="Celery worker processes to start (needs --broker); 0 runs the tasks in process",
    )
    parser.add_argument("--broker", default="", help="Redis URL for --workers, e.g. redis://...")
    parser.add_argument("--chunk-size", type=int, default=None, help="member ids per task")
    parser.add_argument("--regenerate", action="store_true", help="generate the data again")
    parser.add_argument("--no-reference", action="store_true", help="skip the lifetimes comparison")
    return parser.parse_args()


# -- database and Django set-up (the database is created by scripts/create_database.py) ---------


def bench_url(url: str, database: str) -> str:
    parts = urlparse(url)
    if not parts.scheme.startswith("postgres"):
        sys.exit("DATABASE_URL must point at PostgreSQL (postgres://user@host:port/db).")
    return urlunparse(parts._replace(path=f"/{database}"))


def setup_django(url: str, broker: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "loyalty_site.settings"
    os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")
    os.environ["CELERY_BROKER_URL"] = broker
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


# -- data ---------------------------------------------------------------------------------------

EVENT_INDEXES = [
    # (name, drop, create): the event table's secondary indexes, rebuilt after the bulk load
    (
        "event_member_time_idx",
        "DROP INDEX IF EXISTS event_member_time_idx",
        "CREATE INDEX event_member_time_idx ON journeys_customerevent (member_id, occurred_at)",
    ),
    (
        "event_type_time_idx",
        "DROP INDEX IF EXISTS event_type_time_idx",
        "CREATE INDEX event_type_time_idx ON journeys_customerevent (event_type, occurred_at)",
    ),
    (
        "event_idempotency_key_unique",
        "ALTER TABLE journeys_customerevent DROP CONSTRAINT IF EXISTS event_idempotency_key_unique",
        "ALTER TABLE journeys_customerevent ADD CONSTRAINT event_idempotency_key_unique "
        "UNIQUE (idempotency_key)",
    ),
]


def current_sizes() -> tuple[int, int]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM members_member")
        members = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM journeys_customerevent")
        events = cur.fetchone()[0]
    return members, events


def member_insert_sql() -> tuple[str, list, int]:
    """INSERT ... SELECT generate_series for members_member: every column the model has, with
    the model's defaults, and the varying ones (number, codes, enrollment time) made in SQL."""
    from django.db import connection

    from members.models import Channel, Member

    varying = {
        "member_number": "'B' || lpad(g::text, 10, '0')",
        "referral_code": "'R' || lpad(g::text, 10, '0')",
        "external_id": "'bench-' || g",
        "enrolled_at": f"%s::timestamptz - random() * interval '{HISTORY_DAYS} days'",
        "email": "NULL",
        "user_id": "NULL",
        "referred_by_id": "NULL",
        "closed_at": "NULL",
        "consent_changed_at": "NULL",
        "birth_date": "NULL",
        "enrollment_channel": f"'{Channel.IMPORT}'",
        "updated_at": "now()",
    }
    columns, expressions, params = [], [], []
    now_param = None
    for field in Member._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(field.column)
        if field.column in varying:
            expressions.append(varying[field.column])
            if field.column == "enrolled_at":
                now_param = len(params)
                params.append(None)
        else:
            expressions.append("%s")
            params.append(field.get_db_prep_save(field.get_default(), connection))
    sql = (
        f"INSERT INTO members_member ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {', '.join(expressions)} FROM generate_series(1, %s) g"
    )
    return sql, params, now_param


# The population the purchases are drawn from: BG/NBD (per week) and Gamma-Gamma, with about
# ten purchases per member at the default sizes. The fit should come back close to these.
TRUE_BGNBD = {"r": 0.55, "alpha": 1.7, "a": 0.7, "b": 6.5}
TRUE_GAMMA_GAMMA = {"p": 6.0, "q": 4.0, "v": 15.0}
BUYER_SHARE = 0.9
REPEAT_CAP = 400
DRAWN = dict(TRUE_BGNBD)


def simulate(rng, weeks_enrolled, purchases_per_member: float):
    """Each member buys first on their enrollment day (90 % of them do), then repeatedly at a
    Poisson rate (gamma across members) until they drop out after a purchase (with a beta
    probability across members), never after now. Spend per purchase is gamma with a gamma
    scale per member. Returns (member index, weeks after enrollment, amount) per purchase."""
    n = len(weeks_enrolled)
    alpha = TRUE_BGNBD["alpha"] * 10 / max(purchases_per_member, 0.1)
    DRAWN["alpha"] = round(alpha, 3)  # the rate scale follows the purchases asked for
    buyer = rng.random(n) < BUYER_SHARE
    rate = rng.gamma(TRUE_BGNBD["r"], 1 / alpha, n)
    drop = rng.beta(TRUE_BGNBD["a"], TRUE_BGNBD["b"], n)
    repeats = np.where(buyer, np.minimum(rng.geometric(drop) - 1, REPEAT_CAP), 0)
    member = np.repeat(np.arange(n), repeats)
    gaps = rng.exponential(1.0, int(repeats.sum())) / rate[member]
    elapsed = np.cumsum(gaps)
    starts = np.concatenate([[0.0], elapsed])[np.cumsum(repeats) - repeats]
    at = elapsed - np.repeat(starts, repeats)
    keep = at <= weeks_enrolled[member]
    first = np.flatnonzero(buyer)
    member = np.concatenate([first, member[keep]])
    at = np.concatenate([np.zeros(len(first)), at[keep]])
    g = TRUE_GAMMA_GAMMA
    scale = rng.gamma(g["q"], 1 / g["v"], n)  # nu: each member's rate of spend
    amount = rng.gamma(g["p"], 1.0, len(member)) / scale[member]
    return member, at, np.maximum(np.round(amount, 2), 0.01)


def generate(members: int, purchases: int) -> float:
    """Replace the members and events with `members` members enrolled over three years and
    about `purchases` purchases drawn from the models (see simulate); returns the seconds."""
    import io

    import pandas as pd
    from django.db import connection
    from django.utils import timezone

    started = time.monotonic()
    now = timezone.now()
    sql, params, now_index = member_insert_sql()
    params[now_index] = now
    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE members_member, auth_user, journeys_stagetransition RESTART IDENTITY CASCADE"
        )
        cur.execute(sql, [*params, members])
        print(f"  {members:,} members in {time.monotonic() - started:.1f} s", flush=True)
        buffer = io.StringIO()
        cur.cursor.copy_expert(
            "COPY (SELECT id, extract(epoch from enrolled_at) FROM members_member ORDER BY id) "
            "TO STDOUT WITH (FORMAT csv)",
            buffer,
        )
        buffer.seek(0)
        enrolled = pd.read_csv(buffer, header=None, names=["id", "epoch"])
        step = time.monotonic()
        ids = enrolled["id"].to_numpy()
        epoch = enrolled["epoch"].to_numpy(float)
        weeks = (now.timestamp() - epoch) / WEEK_SECONDS
        rng = np.random.default_rng(2026)
        member, at, amount = simulate(rng, weeks, purchases / max(members, 1) / BUYER_SHARE)
        frame = pd.DataFrame(
            {"member_id": ids[member], "epoch": epoch[member] + at * WEEK_SECONDS, "amount": amount}
        )
        print(f"  {len(frame):,} purchases drawn in {time.monotonic() - step:.1f} s", flush=True)
        step = time.monotonic()
        for _, drop, _ in EVENT_INDEXES:
            cur.execute(drop)
        cur.execute(
            "CREATE TEMPORARY TABLE bench_purchases (member_id bigint, epoch float8, "
            "amount numeric(12, 2))"
        )
        for lo in range(0, len(frame), 1_000_000):
            text = io.StringIO()
            frame.iloc[lo : lo + 1_000_000].to_csv(text, header=False, index=False)
            text.seek(0)
            cur.cursor.copy_expert("COPY bench_purchases FROM STDIN WITH (FORMAT csv)", text)
        cur.execute(
            """
            INSERT INTO journeys_customerevent (member_id, event_type, occurred_at, received_at,
                channel, amount, currency, order_id, properties, idempotency_key, source,
                points_awarded, response)
            SELECT member_id, 'purchase', to_timestamp(epoch), to_timestamp(epoch), 'web',
                   amount, 'EUR', '', '{}', 'bench-' || row_number() OVER (), 'import', 0, '{}'
            FROM bench_purchases
            """
        )
        cur.execute("DROP TABLE bench_purchases")
        print(f"  written in {time.monotonic() - step:.1f} s", flush=True)
        step = time.monotonic()
        for _, _, create in EVENT_INDEXES:
            cur.execute(create)
        print(f"  indexes in {time.monotonic() - step:.1f} s", flush=True)
        cur.execute("VACUUM ANALYZE members_member")
        cur.execute("VACUUM ANALYZE journeys_customerevent")
    return time.monotonic() - started


# -- workers ------------------------------------------------------------------------------------


def start_workers(count: int, url: str, broker: str) -> list[subprocess.Popen]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": broker,
        "CONN_MAX_AGE": "0",
    }
    procs = []
    for i in range(count):
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "loyalty_site",
                    "worker",
                    "--pool=solo",
                    f"--hostname=bench{i}@%h",
                    "--loglevel=WARNING",
                    "--without-heartbeat",
                    "--without-gossip",
                    "--without-mingle",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    time.sleep(6)
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the run ------------------------------------------------------------------------------------


def peak_memory_gb() -> tuple[float, float]:
    """Peak resident memory of this process and of its largest child (ru_maxrss is in KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    return own, children


def reference_fit(run) -> None:
    import pandas as pd

    from analytics import btyd
    from analytics.models import MemberMetrics

    rows = MemberMetrics.objects.filter(purchase_days__gt=0).values_list(
        "frequency", "recency_days", "tenure_days"
    )
    frame = pd.DataFrame.from_records(rows.iterator(chunk_size=100_000), columns=["x", "r", "T"])
    x = frame["x"].to_numpy(float)
    t_x = frame["r"].to_numpy(float) / 7
    T = frame["T"].to_numpy(float) / 7
    started = time.monotonic()
    (cx, ct, cT), weights = btyd.collapse(x, t_x, T)
    ours = btyd.fit_bgnbd(cx, ct, cT, weights)
    ours_seconds = time.monotonic() - started
    print(
        f"BG/NBD fit, ours (numpy/scipy, {len(x):,} customers collapsed to {len(cx):,} rows): "
        f"{ours_seconds:.2f} s; "
        + ", ".join(f"{k}={v:.4f}" for k, v in ours.params.items())
        + f"; log-likelihood {ours.log_likelihood:.1f}"
    )
    try:
        from lifetimes import BetaGeoFitter
    except ImportError:
        print("lifetimes is not installed (pip install -r requirements-dev.txt): no reference")
        return
    started = time.monotonic()
    try:
        reference = BetaGeoFitter().fit(cx, ct, cT, weights=weights.astype(int))
    except Exception as exc:  # lifetimes raises its ConvergenceError on hard data
        print(f"lifetimes did not fit: {str(exc).strip()}")
        return
    same_rows = time.monotonic() - started
    params = reference.params_
    print(
        f"BG/NBD fit, lifetimes 0.11.3 on the same collapsed rows: {same_rows:.2f} s; "
        + ", ".join(f"{k}={params[k]:.4f}" for k in ("r", "alpha", "a", "b"))
    )
    print(f"ratio lifetimes/ours on the same rows: {same_rows / ours_seconds:.1f}x")
    started = time.monotonic()
    BetaGeoFitter().fit(x, t_x, T)
    per_customer = time.monotonic() - started
    print(
        f"BG/NBD fit, lifetimes one row per customer ({len(x):,} rows): {per_customer:.2f} s; "
        f"ratio to ours: {per_customer / ours_seconds:.1f}x"
    )
    agree = all(np.isclose(ours.params[k], params[k], rtol=1e-3) for k in ("r", "alpha", "a", "b"))
    print(f"parameters agree within 0.1%: {'yes' if agree else 'NO'}")


def main() -> int:
    args = parse_args()
    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    url = bench_url(server, args.database)
    if args.workers and not args.broker:
        sys.exit("--workers needs --broker redis://...")
    create_database(url)
    setup_django(url, args.broker if args.workers else "")

    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        version = cur.fetchone()[0]
    print(
        f"PostgreSQL {version}, database {args.database}; {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        flush=True,
    )
    members, events = current_sizes()
    wanted_events = args.purchases
    generated = False
    if args.regenerate or members != args.members or not events:
        print(f"generating {args.members:,} members and {args.purchases:,} purchases ...")
        seconds = generate(args.members, args.purchases)
        generated = True
        members, events = current_sizes()
        print(f"generated in {seconds:.1f} s", flush=True)
    else:
        print(f"reusing {members:,} members and {events:,} events (--regenerate to redo)")
    if events < wanted_events * 0.9:
        print(f"note: {events:,} events present, fewer than the {wanted_events:,} asked for")

    from analytics.models import MemberMetrics
    from analytics.pipeline import run_pipeline
    from analytics.pipeline.runs import local_today

    workers = start_workers(args.workers, url, args.broker) if args.workers else []
    try:
        started = time.monotonic()
        run = run_pipeline(as_of=local_today(), trigger="bench", per_chunk=args.chunk_size)
        wall = time.monotonic() - started
    finally:
        stop_workers(workers)
    own, child = peak_memory_gb()
    peak = max(own, child)
    marks = run.details.get("marks", {})
    phases = ", ".join(
        f"{name} at {seconds:.1f} s" for name, seconds in sorted(marks.items(), key=lambda m: m[1])
    )
    mode = f"{args.workers} worker processes" if args.workers else "in process (eager tasks)"
    print(
        f"\nrun {run.pk} as of {run.as_of}: {run.status}; {run.chunks} chunks, {mode}; "
        f"{run.rows:,} rows"
    )
    print(f"phases (seconds from start): {phases}")
    print(
        f"scored members: {MemberMetrics.objects.filter(purchase_days__gt=0).count():,} "
        f"purchasers of {members:,} members, {events:,} events"
    )
    truth = {"bgnbd": DRAWN, "gamma_gamma": TRUE_GAMMA_GAMMA} if generated else {}
    for fit in run.fits.order_by("model"):
        params = ", ".join(f"{k}={v:.4f}" for k, v in fit.params.items())
        drawn = ", ".join(f"{k}={v}" for k, v in truth.get(fit.model, {}).items())
        print(
            f"  {fit.model}: {params}; LL {fit.log_likelihood or 0:.1f}; "
            f"n={fit.n_customers:,}; converged={fit.converged}"
            + (f" (data drawn with {drawn})" if drawn else "")
        )
    verdict = "MET" if wall <= TARGET_SECONDS else "NOT MET"
    print(f"wall time {wall:.1f} s (target <= {TARGET_SECONDS} s): {verdict}")
    verdict = "MET" if peak <= TARGET_MEMORY_GB else "NOT MET"
    print(
        f"peak memory {peak:.2f} GB (this process {own:.2f} GB, largest child {child:.2f} GB; "
        f"target <= {TARGET_MEMORY_GB:.0f} GB): {verdict}",
        flush=True,
    )
    if not args.no_reference:
        print()
        reference_fit(run)
    return 0 if run.status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
