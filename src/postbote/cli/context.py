"""What every command shares: building the app, turning errors into the CLI's error output, the
--json option, and running a coroutine (on uvloop when installed)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Iterator

import typer

from ..app import App
from ..errors import PostboteError
from .output import fail

JsonOpt = typer.Option(False, "--json", help="Print one JSON document (keys documented in the README).")


@contextlib.contextmanager
def guarded(as_json: bool = False) -> Iterator[App]:
    """Build the app, turn every PostboteError into the CLI's error output, close the store."""
    app = None
    try:
        app = App.from_environment()
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
