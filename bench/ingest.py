"""Event ingestion at speed: single events and batches over HTTP against gunicorn, and the
transaction import, beside pgbench's simple-update TPS on the same server as the ceiling;
then a check that every purchase earned its points and every balance equals its ledger.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x .venv/bin/python bench/ingest.py [--quick]

DATABASE_URL only says which PostgreSQL server to use: the benchmark works in its own database
(loyalty_bench_ingest unless --database says otherwise), creates and migrates it, and empties
its members, users, events and ledger at the start of every run. See bench/README.md.
"""

import argparse
import http.client
import json
import multiprocessing as mp
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
SINGLE_CLIENTS = 16
BATCH_CLIENTS = 3
BATCH_SIZE = 1000
PURCHASE_SHARE = 0.3
TARGET_SINGLE = 400  # events/s
TARGET_P95_MS = 50
TARGET_BATCH = 5000  # events/s
TARGET_IMPORT = 50_000  # rows/s
GUNICORN_LOG = Path(tempfile.gettempdir()) / f"bench-ingest-gunicorn-{os.getpid()}.log"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="3 s per load phase and a 100,000-row import file"
    )
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker")
    parser.add_argument(
        "--worker-class", default="gthread", help="gunicorn worker class (gthread or sync)"
    )
    parser.add_argument("--database", default="loyalty_bench_ingest", help="emptied on every run")
    parser.add_argument("--seconds", type=int, default=None, help="seconds per load phase")
    parser.add_argument("--import-rows", type=int, default=None, help="rows in the import file")
    parser.add_argument(
        "--phases",
        default="pgbench,floor,single,batch,import",
        help="comma-separated subset of pgbench,floor,single,batch,import,import-points "
        "(floor: an authenticated request that does no work, through the same stack; "
        "import-points: the same file imported again into an emptied database, with points)",
    )
    return parser.parse_args()


# -- database and Django set-up (the same approach as bench/ledger.py) -------------------------


def bench_url(url: str, database: str) -> str:
    parts = urlparse(url)
    if not parts.scheme.startswith("postgres"):
        sys.exit("DATABASE_URL must point at PostgreSQL (postgres://user@host:port/db).")
    return urlunparse(parts._replace(path=f"/{database}"))


def _admin_connection(url: str):
    import psycopg2

    parts = urlparse(url)
    conn = psycopg2.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname="postgres",
    )
    conn.autocommit = True
    return conn


def create_database(url: str) -> bool:
    from psycopg2 import sql

    conn = _admin_connection(url)
    try:
        with conn.cursor() as cur:
            name = urlparse(url).path.lstrip("/")
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cur.fetchone() is not None:
                return False
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    finally:
        conn.close()


def drop_database(url: str) -> None:
    from psycopg2 import sql

    conn = _admin_connection(url)
    try:
        with conn.cursor() as cur:
            name = urlparse(url).path.lstrip("/")
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
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


def prepare(members: int) -> tuple[list[int], str]:
    """Migrate, empty the previous run's data, set up one earning rule (1 point per EUR on
    purchases), enroll the members and create an API key; returns member ids and the key."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from members.models import Channel
    from members.services import create_api_key, enroll_member
    from rewards.models import EarningRule, EarningRuleKind, Tier
    from rewards.selectors import program_settings

    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cur:
        # CASCADE empties every table that points at members or users: accounts, ledger,
        # events, journeys, API keys, ...; the stage transitions (no foreign key) by name.
        cur.execute(
            "TRUNCATE members_member, auth_user, journeys_stagetransition RESTART IDENTITY CASCADE"
        )
    program_settings()
    EarningRule.objects.all().delete()
    Tier.objects.all().delete()  # no tier multipliers: a purchase earns exactly its euros
    EarningRule.objects.create(
        name="Bench: 1 point per EUR",
        kind=EarningRuleKind.PURCHASE,
        event_type="purchase",
        points_per_unit=1,
    )
    ids = []
    for n in range(members):
        member, _ = enroll_member(channel=Channel.API, external_id=f"bench-{n}")
        ids.append(member.pk)
    user = get_user_model().objects.create_superuser("bench", "bench@example.com", None)
    _, raw_key = create_api_key(user=user, name="bench")
    return ids, raw_key


# -- 1. pgbench ----------------------------------------------------------------------------------


def run_pgbench(url: str, seconds: int, database: str) -> float:
    parts = urlparse(url)
    scratch = bench_url(url, database)
    create_database(scratch)
    conn = [
        "-h",
        parts.hostname or "127.0.0.1",
        "-p",
        str(parts.port or 5432),
        "-U",
        parts.username or "postgres",
    ]
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = parts.password
    try:
        subprocess.run(
            ["pgbench", *conn, "-i", "-s", "1", "-q", database],
            env=env,
            check=True,
            capture_output=True,
        )
        out = subprocess.run(
            ["pgbench", *conn, "-c", "4", "-j", "2", "-T", str(seconds), "-N", database],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        drop_database(scratch)
    found = re.search(r"tps = ([\d.]+)", out)
    if found is None:
        sys.exit(f"cannot read pgbench's output:\n{out}")
    return float(found.group(1))


# -- gunicorn -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(
    url: str, port: int, workers: int, threads: int, worker_class: str
) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("CELERY_BROKER_URL", None)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "loyalty_site.settings",
            "PYTHONPATH": str(ROOT),
            "SECRET_KEY": env.get("SECRET_KEY") or "bench-only-not-a-secret",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",
            "DATABASE_URL": url,
            "LOG_LEVEL": "WARNING",
            "MANIFEST_STATIC": "0",
        }
    )
    proc = subprocess.Popen(
        [
            GUNICORN,
            "loyalty_site.wsgi",
            "-w",
            str(workers),
            "--threads",
            str(threads),
            "--worker-class",
            worker_class,
            "-b",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        # A file, not a pipe: nobody reads a pipe while the load runs, and a full one would
        # block the workers' logging (tracebacks) and hang their requests.
        stderr=GUNICORN_LOG.open("w"),
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"gunicorn exited with {proc.returncode}:\n{GUNICORN_LOG.read_text()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/v1/events/")
            conn.getresponse().read()
            conn.close()
            return proc
        except OSError:
            time.sleep(0.2)
    stop_gunicorn(proc)
    sys.exit("gunicorn did not answer within 60 s")


def warm_up(port: int, api_key: str, member_id: int, requests: int) -> None:
    """A few page views at once, so each worker has loaded its code before the clock runs."""
    headers = {"Authorization": f"Api-Key {api_key}", "Content-Type": "application/json"}

    def send(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        event = {"member_id": member_id, "event_type": "page_view", "idempotency_key": f"w{n}"}
        conn.request("POST", "/api/v1/events/", body=json.dumps(event), headers=headers)
        conn.getresponse().read()
        conn.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def stop_gunicorn(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


# -- 2. and 3. the load generator (runs in a second process) ------------------------------------


def _event(rng: random.Random, member_ids: list[int], key: str) -> dict:
    event = {"member_id": rng.choice(member_ids), "idempotency_key": key, "channel": "web"}
    if rng.random() < PURCHASE_SHARE:
        event.update(event_type="purchase", amount=f"{rng.randint(1, 200)}.00")
    else:
        event.update(event_type="page_view", properties={"path": f"/p/{rng.randint(1, 500)}"})
    return event


class _Connection:
    """One keep-alive HTTP/1.1 connection on a raw socket. http.client parses every answer's
    headers with the email package and cost the load generator 0.3-0.4 ms per request, more
    than a fifth of what it measured; this reads the status line and Content-Length only."""

    def __init__(self, port: int, api_key: str):
        self.port = port
        self.auth = f"Authorization: Api-Key {api_key}\r\n".encode()
        self.sock: socket.socket | None = None
        self.buffer = b""

    def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        ).encode()
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=120)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer = b""
        self.sock.sendall(head + self.auth + b"\r\n" + body)
        return self._answer()

    def _receive(self) -> None:
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buffer += data

    def _answer(self) -> tuple[int, bytes]:
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._receive()
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection":
                close = value.strip().lower() == "close"
        total = end + 4 + length
        while len(self.buffer) < total:
            self._receive()
        body, self.buffer = self.buffer[end + 4 : total], self.buffer[total:]
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _client(kind, port, api_key, member_ids, seconds, index, barrier, out, lock) -> None:
    rng = random.Random(f"{kind}-{index}")
    conn = _Connection(port, api_key)
    latencies, errors, events, purchases, samples = [], 0, 0, 0, []
    n = 0
    barrier.wait()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        method = "POST"
        if kind == "floor":
            items, method, path, body = [None], "GET", "/api/v1/events/", b""
        elif kind == "single":
            items = [_event(rng, member_ids, f"single-{index}-{n}")]
            path, body = "/api/v1/events/", json.dumps(items[0]).encode()
        else:
            items = [_event(rng, member_ids, f"batch-{index}-{n}-{i}") for i in range(BATCH_SIZE)]
            path, body = "/api/v1/events/batch/", json.dumps({"events": items}).encode()
        n += 1
        start = time.perf_counter()
        try:
            status, data = conn.request(method, path, body)
        except (OSError, ValueError) as exc:
            conn.close()
            errors += len(items)
            samples.append(repr(exc))
            continue
        latencies.append(time.perf_counter() - start)
        if kind == "floor":  # authenticated and permitted, then 405: the stack without work
            events += status == 405
            if status != 405:
                errors += 1
                samples.append(f"{status} {data[:200]!r}")
        elif kind == "single":
            if status == 201:
                events += 1
                purchases += items[0]["event_type"] == "purchase"
            else:
                errors += 1
                samples.append(f"{status} {data[:200]!r}")
        elif status != 200:
            errors += len(items)
            samples.append(f"{status} {data[:200]!r}")
        else:
            answer = json.loads(data)
            for item, result in zip(items, answer["results"], strict=True):
                if result["status"] == "created":
                    events += 1
                    purchases += item["event_type"] == "purchase"
                else:
                    errors += 1
                    samples.append(json.dumps(result)[:200])
    conn.close()
    with lock:
        out.append((latencies, errors, events, purchases, samples[:3]))


def load_process(kind, port, api_key, member_ids, seconds, clients, queue) -> None:
    """Entry point of the second process: `clients` threads, each with its own keep-alive
    connection (reopened when the server closes it, as gunicorn's sync workers do)."""
    barrier = threading.Barrier(clients + 1)
    out: list[tuple] = []
    lock = threading.Lock()
    threads = [
        threading.Thread(
            target=_client,
            args=(kind, port, api_key, member_ids, seconds, i, barrier, out, lock),
        )
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.monotonic()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    latencies = [x for row in out for x in row[0]]
    queue.put(
        {
            "cpu": time.process_time(),  # the load generator's own processor time
            "elapsed": elapsed,
            "latencies": latencies,
            "errors": sum(row[1] for row in out),
            "events": sum(row[2] for row in out),
            "purchases": sum(row[3] for row in out),
            "samples": [s for row in out for s in row[4]][:5],
        }
    )


def run_load(kind, port, api_key, member_ids, seconds, clients, server_pid) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(
        target=load_process, args=(kind, port, api_key, member_ids, seconds, clients, queue)
    )
    before = cpu_times(server_pid)
    proc.start()
    result = queue.get()
    proc.join()
    after = cpu_times(server_pid)
    if proc.exitcode != 0:
        sys.exit(f"the {kind} load process failed (exit code {proc.exitcode})")
    result["server_cpu"] = {name: after[name] - before.get(name, 0.0) for name in after}
    return result


# -- where the processor time goes ----------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _processes() -> dict[int, tuple[str, int, float]]:
    """pid -> (command, parent pid, user + system seconds), from /proc (Linux)."""
    found = {}
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        command = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry.name)] = (
            command,
            int(fields[1]),
            (int(fields[11]) + int(fields[12])) / _TICK,
        )
    return found


def cpu_times(server_pid: int) -> dict[str, float]:
    """Processor seconds used so far by the gunicorn workers and by PostgreSQL's processes
    (when the server runs on this machine); processes that exit in between are not counted."""
    processes = _processes()
    totals = {"gunicorn": 0.0, "postgres": 0.0}
    for pid, (command, parent, seconds) in processes.items():
        if parent == server_pid or pid == server_pid:
            totals["gunicorn"] += seconds
        elif command == "postgres":
            totals["postgres"] += seconds
    return totals


def cpu_line(result: dict, done: int, label: str) -> str:
    """Processor milliseconds per event in the server, PostgreSQL and the load generator,
    and the rate the machine's processors would allow at that cost."""
    if not done:
        return ""
    server = result["server_cpu"]
    parts = {
        "gunicorn": server.get("gunicorn", 0.0),
        "PostgreSQL": server.get("postgres", 0.0),
        "load generator": result["cpu"],
    }
    total = sum(parts.values())
    ceiling = (os.cpu_count() or 1) / (total / done) if total else float("inf")
    shown = ", ".join(f"{name} {1000 * value / done:.2f}" for name, value in parts.items())
    return (
        f"  processor time per {label}: {shown} ms; {1000 * total / done:.2f} ms in all, "
        f"so at most {ceiling:.0f} /s on {os.cpu_count()} CPUs"
    )


def percentile(values: list[float], fraction: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


# -- 4. the transaction import -----------------------------------------------------------------


def write_cdnow_file(path: Path, rows: int) -> None:
    """CDNOW-style history: customer_id,date (YYYYMMDD),amount, sorted by customer and date,
    about ten purchases per customer between 1997-01-01 and 1998-06-30."""
    rng = random.Random(1997)
    customers = max(1, rows // 10)
    first, span = date(1997, 1, 1), 545
    days = [(first + timedelta(days=d)).strftime("%Y%m%d") for d in range(span)]
    per_customer = [1] * customers
    for _ in range(rows - customers):
        per_customer[rng.randrange(customers)] += 1
    with open(path, "w", newline="") as handle:
        handle.write("customer_id,date,amount\n")
        lines = []
        for customer, count in enumerate(per_customer, start=1):
            for d in sorted(rng.randrange(span) for _ in range(count)):
                lines.append(f"{customer},{days[d]},{rng.randint(100, 30000) / 100:.2f}\n")
            if len(lines) > 50_000:
                handle.writelines(lines)
                lines = []
        handle.writelines(lines)


def run_import(url: str, path: Path, rows: int, points: bool) -> tuple[float, float, str]:
    env = dict(os.environ, DATABASE_URL=url, PYTHONPATH=str(ROOT))
    env.pop("CELERY_BROKER_URL", None)
    command = [
        PYTHON,
        "manage.py",
        "import_transactions",
        str(path),
        "--date-format",
        "%Y%m%d",
        "--no-progress",
    ]
    if not points:
        command.append("--no-points")
    start = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"import_transactions failed:\n{done.stderr[-2000:]}")
    return rows / elapsed, elapsed, done.stdout.strip()


# -- 5. checks -----------------------------------------------------------------------------------


def check(purchases_sent: int) -> bool:
    """One aggregate query for balances against ledger sums, one for the purchases' points."""
    from django.db import connection

    from journeys.models import CustomerEvent
    from journeys.services.ingest import AWARD_KEY_PREFIX
    from members.models import Member
    from rewards.models import PointsAccount, PointsTransaction

    members = Member._meta.db_table
    accounts = PointsAccount._meta.db_table
    ledger = PointsTransaction._meta.db_table
    events = CustomerEvent._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT m.id, COALESCE(a.balance, 0), COALESCE(l.total, 0)
            FROM {members} m
            LEFT JOIN {accounts} a ON a.member_id = m.id
            LEFT JOIN (SELECT member_id, SUM(points) AS total FROM {ledger} GROUP BY member_id) l
                ON l.member_id = m.id
            """
        )
        rows = cur.fetchall()
        mismatched = [row for row in rows if row[1] != row[2]]
        cur.execute(
            f"""
            SELECT COUNT(*),
                   COUNT(*) FILTER (
                       WHERE t.id IS NULL
                          OR e.points_awarded <> FLOOR(e.amount)
                          OR t.points + t.pending_points <> FLOOR(e.amount))
            FROM {events} e
            LEFT JOIN {ledger} t ON t.idempotency_key = %s || e.idempotency_key
            WHERE e.event_type = 'purchase' AND e.source = 'api'
            """,
            [AWARD_KEY_PREFIX],
        )
        purchases, unpaid = cur.fetchone()
    ok = not mismatched and not unpaid and purchases == purchases_sent
    print(
        f"ledger check: {len(rows) - len(mismatched)} of {len(rows)} members have "
        f"balance == sum(ledger); {purchases - unpaid} of {purchases} purchase events "
        f"({purchases_sent} acknowledged by the API) earned their points: "
        f"{'OK' if ok else 'FAILED'}"
    )
    for member_id, balance, total in mismatched[:10]:
        print(f"  member {member_id}: balance {balance}, ledger sum {total}")
    return ok


def verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


def empty_imported() -> None:
    """Remove what an import wrote (its members and everything hanging off them), so the file
    can be imported again from scratch."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT id FROM members_member WHERE enrollment_channel = 'import'")
        ids = [row[0] for row in cur.fetchall()]
        if not ids:
            return
        for table in (
            "rewards_ruleaward",
            "rewards_pointsbucket",
            "rewards_purchase",
            "journeys_stagetransition",
            "journeys_memberjourney",
            "journeys_customerevent",
        ):
            cur.execute(f"DELETE FROM {table} WHERE member_id = ANY(%s)", [ids])
        cur.execute("DELETE FROM rewards_pointstransaction WHERE member_id = ANY(%s)", [ids])
        cur.execute("DELETE FROM rewards_pointsaccount WHERE member_id = ANY(%s)", [ids])
        cur.execute("DELETE FROM members_member WHERE id = ANY(%s)", [ids])


def main() -> None:
    args = parse_args()
    phases = set(args.phases.split(","))
    base = os.environ.get("DATABASE_URL", "")
    if not base:
        sys.exit("Set DATABASE_URL to a PostgreSQL server, e.g. postgres://postgres@127.0.0.1/x")
    seconds = args.seconds or (3 if args.quick else 10)
    import_rows = args.import_rows or (100_000 if args.quick else 1_000_000)
    url = bench_url(base, args.database)
    started = time.monotonic()
    created = create_database(url)
    setup_django(url)
    from django.db import connection

    member_ids, api_key = prepare(args.members)
    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        server = cur.fetchone()[0]
    connection.close()
    print(
        f"PostgreSQL {server}, database {args.database}{' (created)' if created else ''}; "
        f"{args.members} members; {seconds} s per load phase; gunicorn with {args.workers} "
        f"{args.worker_class} workers x {args.threads} threads; {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )

    if "pgbench" in phases:
        tps = run_pgbench(base, seconds, f"{args.database}_pgbench")
        print(f"{'pgbench -c 4 -j 2 -N (simple update), ceiling':<48} {tps:9.0f} tps")

    floor = single = batch = {"events": 0, "purchases": 0, "samples": [], "errors": 0}
    if phases & {"floor", "single", "batch"}:
        port = free_port()
        gunicorn = start_gunicorn(url, port, args.workers, args.threads, args.worker_class)
        load = (port, api_key, member_ids, seconds)
        try:
            warm_up(port, api_key, member_ids[0], 4 * args.workers)
            if "floor" in phases:
                floor = run_load("floor", *load, SINGLE_CLIENTS, gunicorn.pid)
            if "single" in phases:
                single = run_load("single", *load, SINGLE_CLIENTS, gunicorn.pid)
            if "batch" in phases:
                batch = run_load("batch", *load, BATCH_CLIENTS, gunicorn.pid)
        finally:
            stop_gunicorn(gunicorn)

    if "floor" in phases:
        rate = floor["events"] / floor["elapsed"]
        p50 = percentile(floor["latencies"], 0.50) * 1000
        p95 = percentile(floor["latencies"], 0.95) * 1000
        print(
            f"{f'floor: GET /api/v1/events/ (405), {SINGLE_CLIENTS} clients':<48} {rate:9.0f} /s"
            f"   p50 {p50:.1f} ms, p95 {p95:.1f} ms, {floor['errors']} errors"
        )
        print(cpu_line(floor, floor["events"], "request"))

    if "single" in phases:
        single_rate = single["events"] / single["elapsed"]
        p50 = percentile(single["latencies"], 0.50) * 1000
        p95 = percentile(single["latencies"], 0.95) * 1000
        print(
            f"{f'single events, {SINGLE_CLIENTS} clients':<48} {single_rate:9.0f} /s   "
            f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, {single['errors']} errors   "
            f"target >= {TARGET_SINGLE} /s, p95 <= {TARGET_P95_MS} ms: "
            f"{verdict(single_rate >= TARGET_SINGLE and p95 <= TARGET_P95_MS)}"
        )
        print(cpu_line(single, single["events"], "event"))
    if "batch" in phases:
        batch_rate = batch["events"] / batch["elapsed"]
        batches = len(batch["latencies"])
        print(
            f"{f'batch events, {BATCH_SIZE} a batch, {BATCH_CLIENTS} clients':<48} "
            f"{batch_rate:9.0f} /s   {batches} batches, {batch['errors']} errors   "
            f"target >= {TARGET_BATCH} /s: {verdict(batch_rate >= TARGET_BATCH)}"
        )
        print(cpu_line(batch, batch["events"], "event"))
    for sample in floor["samples"] + single["samples"] + batch["samples"]:
        print(f"  error sample: {sample}")
    if floor["errors"] or single["errors"] or batch["errors"]:
        print(f"  gunicorn's log: {GUNICORN_LOG}")

    if phases & {"import", "import-points"}:
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
            path = Path(tmp) / "cdnow.csv"
            write_cdnow_file(path, import_rows)
            for points in (False, True):
                if ("import-points" if points else "import") not in phases:
                    continue
                empty_imported()
                connection.close()
                label = "with points" if points else "--no-points"
                rate, elapsed, summary = run_import(url, path, import_rows, points)
                print(
                    f"{f'import_transactions, {import_rows:,} rows, {label}':<48} "
                    f"{rate:9.0f} /s   {elapsed:.1f} s   target >= {TARGET_IMPORT} /s: "
                    f"{verdict(rate >= TARGET_IMPORT)}"
                )
                print(f"  {summary}")

    ok = check(single["purchases"] + batch["purchases"])
    print(f"total time {time.monotonic() - started:.1f} s")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
