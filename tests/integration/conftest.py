"""A real Celery worker process against Redis and the test database."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from kombu import pools as kombu_pools

from loyalty_site.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]


def _drop_cached_connections() -> None:
    """Eager `apply_async` still opens the app's producer pool (on the default broker) and
    caches queues, routes and the result backend; drop them so the new broker and queue are used."""
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    kombu_pools.reset()  # kombu's global pools keep the closed ones per broker otherwise
    celery_app.__dict__.pop("amqp", None)
    celery_app._local.__dict__.pop("backend", None)


@pytest.fixture
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path, settings):
    """Start `celery worker` on the test database; the test process sends tasks through Redis."""
    broker = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    db = connection.settings_dict
    env = {
        **os.environ,
        "CELERY_BROKER_URL": broker,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(tmp_path / "mail"),
        "CONN_MAX_AGE": "0",
    }
    queue = f"test-{os.getpid()}-{time.time_ns()}"
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "loyalty_site",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "-Q",
            queue,
            "--loglevel=INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    keys = ("broker_url", "result_backend", "task_always_eager", "task_default_queue")
    previous = {k: celery_app.conf[k] for k in keys}
    celery_app.conf.update(
        broker_url=broker,
        result_backend=broker,
        task_always_eager=False,
        task_default_queue=queue,
    )
    _drop_cached_connections()
    try:
        deadline = time.time() + 60
        while "ready." not in (tmp_path / "worker.log").read_text():
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(
                    "worker did not start:\n" + (tmp_path / "worker.log").read_text()
                )
            time.sleep(0.2)
        yield {"mail_dir": tmp_path / "mail", "log": tmp_path / "worker.log", "queue": queue}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        celery_app.conf.update(previous)
        _drop_cached_connections()
