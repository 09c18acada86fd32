"""What the benchmark scripts share: a free port on loopback, and a store to measure on (a SQLite
file in the run's folder, or a fresh PostgreSQL schema that is dropped afterwards)."""

from __future__ import annotations

import os
import secrets
import socket

PG_URL = os.environ.get("POSTBOTE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def store_url(kind: str, workdir: str):
    """(DATABASE_URL, a function that removes the store)."""
    if kind == "sqlite":
        return f"sqlite:///{workdir}/bench.db", lambda: None
    from sqlalchemy import create_engine, text

    schema = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    return f"{PG_URL}?options=-csearch_path%3D{schema}", drop
