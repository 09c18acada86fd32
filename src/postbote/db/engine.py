"""Opening the store: one SQLAlchemy engine per process, tuned per dialect."""

from __future__ import annotations

import os
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


def write_private(path: Path, data: bytes) -> None:
    """A new file readable by its owner only from its first byte (O_EXCL: never an existing one)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _private_database_file(path: Path) -> None:
    """Create the database file empty and private before SQLite opens it: SQLite gives its -wal and
    -shm files the database file's permissions, so all three are 0600 from their first byte."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # an older installation's file: the store holds keys and mail
        for suffix in ("-wal", "-shm"):
            companion = path.with_name(path.name + suffix)
            if companion.exists():
                companion.chmod(0o600)


def _sqlite_engine(parsed, synchronous: str) -> Engine:
    if synchronous not in ("NORMAL", "FULL"):
        raise ConfigError(f"SQLITE_SYNCHRONOUS {synchronous!r} is neither NORMAL nor FULL.", hint="Use NORMAL or FULL.")
    if parsed.database and parsed.database != ":memory:":
        _private_database_file(Path(parsed.database))
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
