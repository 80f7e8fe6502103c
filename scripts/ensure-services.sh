#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) answer; start them the
# documented way when they do not, or fail with a clear message.
set -u

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # port, seconds
  for _ in $(seq 1 "$2"); do port_open "$1" && return 0; sleep 1; done
  return 1
}

if ! port_open 5432; then
  echo "PostgreSQL is not answering on 127.0.0.1:5432; starting it..."
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  if ! wait_for 5432 20; then
    echo "ERROR: PostgreSQL is not running on 127.0.0.1:5432 and could not be started." >&2
    echo "       Start it (pg_ctlcluster ... main start) or set DATABASE_URL to a reachable server." >&2
    exit 1
  fi
fi

if ! port_open 6379; then
  echo "Redis is not answering on 127.0.0.1:6379; starting it..."
  if command -v redis-server >/dev/null; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
  if ! wait_for 6379 20; then
    echo "ERROR: Redis is not running on 127.0.0.1:6379 and could not be started." >&2
    echo "       Install and start redis-server, or set CELERY_BROKER_URL to a reachable one." >&2
    exit 1
  fi
fi
echo "PostgreSQL and Redis are answering."
