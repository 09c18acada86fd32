"""What every command shares: building the app, turning errors into the CLI's error output, the
--json option, and running a coroutine (on uvloop when installed)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Iterator

import typer
import typer.core

from ..app import App
from ..errors import PostboteError
from .output import fail

def _flags_take_no_value() -> None:
    """Typer's help shows every flag with a type, as if it took a value ("--json <bool>"); a flag
    takes none, so its help shows none."""
    shown = typer.core.TyperOption.display_type_rich

    def display_type_rich(self, ctx):
        return None if self.is_flag and self.metavar is None else shown(self, ctx)

    typer.core.TyperOption.display_type_rich = display_type_rich


_flags_take_no_value()

JsonOpt = typer.Option(False, "--json", help="Print one JSON document (keys documented in the README).")


@contextlib.contextmanager
def guarded(as_json: bool = False, *, config_may_be_missing: bool = False) -> Iterator[App]:
    """Build the app, turn every PostboteError into the CLI's error output, close the store."""
    app = None
    try:
        app = App.from_environment(config_may_be_missing=config_may_be_missing)
        yield app
    except PostboteError as error:
        fail(error, as_json=as_json)
    finally:
        if app is not None:
            app.close()


def run_async(coro):
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)
