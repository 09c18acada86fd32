"""Schema migrations (Alembic), run from code: ``postbote init`` and the tests call these."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from ..errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    return ScriptDirectory.from_config(_config(None)).get_current_head()  # type: ignore[arg-type]


def require_current(engine: Engine) -> None:
    """Refuse to run on a store whose schema is missing or old."""
    try:
        current = current_revision(engine)
    except Exception as exc:  # unreachable server, unreadable file
        raise StoreError(f"The database cannot be opened: {exc.__class__.__name__}.") from None
    if current != head_revision():
        raise StoreError(
            f"The database schema is at {current or 'nothing'}, Postbote needs {head_revision()}.",
            hint="Run 'postbote init' to create or upgrade it.",
        )
