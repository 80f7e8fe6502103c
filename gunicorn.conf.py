"""gunicorn settings for the web process (Dockerfile, docker-compose.yml); command-line options
override them (bench/ingest.py passes its own workers and threads).

Threaded workers: an event request spends much of its time waiting for PostgreSQL, so a few
threads per process keep both cores busy with fewer processes (less memory) than sync workers.
WEB_CONCURRENCY (processes, default 2 per core) and WEB_THREADS (default 4) tune it."""

import multiprocessing
import os

workers = int(os.environ.get("WEB_CONCURRENCY", 2 * multiprocessing.cpu_count()))
threads = int(os.environ.get("WEB_THREADS", 4))
worker_class = "gthread"
timeout = 120  # a 1,000-event batch on a busy machine
keepalive = 5
max_requests = 10_000  # recycle workers now and then (memory)
max_requests_jitter = 1_000
