"""Opening the store: one SQLAlchemy engine per process, tuned per dialect."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from ..errors import ConfigError


def open_engine(url: str, *, sqlite_synchronous: str = "NORMAL") -> Engine:
    """An engine for DATABASE_URL. SQLite gets WAL and a busy timeout so that an API process and
    a worker process can share one file; its folder is created when missing."""
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError(
            f"DATABASE_URL {url!r} is not a database URL.",
            hint="Use sqlite:///var/postbote.db or postgresql+psycopg://user@host/db.",
        ) from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, sqlite_synchronous)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_size=5, max_overflow=5, pool_pre_ping=True)
    raise ConfigError(
        f"DATABASE_URL uses {parsed.get_backend_name()!r}, which Postbote does not support.",
        hint="Use SQLite (embedded) or PostgreSQL.",
    )


def _sqlite_engine(parsed, synchronous: str) -> Engine:
    if synchronous not in ("NORMAL", "FULL"):
        raise ConfigError(f"SQLITE_SYNCHRONOUS {synchronous!r} is neither NORMAL nor FULL.", hint="Use NORMAL or FULL.")
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        parsed, connect_args={"check_same_thread": False, "timeout": 30}
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode is durable against a process crash (kill -9); only a power loss
        # can take the last commits back. FULL flushes the WAL to disk at every commit.
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine
