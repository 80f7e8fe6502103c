"""Create the PostgreSQL database named in a DATABASE_URL when it does not exist yet."""

import sys
from urllib.parse import urlparse

import psycopg2
from psycopg2 import sql


def main(url: str) -> None:
    parts = urlparse(url)
    if not parts.scheme.startswith("postgres"):
        return
    name = parts.path.lstrip("/")
    conn = psycopg2.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname="postgres",
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")
    conn.close()


if __name__ == "__main__":
    main(sys.argv[1])
