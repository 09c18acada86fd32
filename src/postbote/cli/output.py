"""How the CLI speaks: tables and sentences for people, one JSON document with ``--json``, and
errors as ``error[code]: sentence`` plus a hint on stderr (or an ``error`` object with --json)."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import InputError, NotFoundError, PostboteError

console = Console()
err_console = Console(stderr=True)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def fail(error: PostboteError, *, as_json: bool) -> NoReturn:
    if as_json:
        emit_json({"error": error.to_dict()})
    else:
        err_console.print(f"[bold red]error\\[{escape(error.code)}][/]: {escape(error.message)}", highlight=False)
        for detail in error.details or []:
            suggestion = f" — did you mean {detail['suggestion']}?" if detail.get("suggestion") else ""
            err_console.print(f"  {escape(detail.get('address', ''))}: {escape(detail.get('message') or '')}"
                              f"{escape(suggestion)}", highlight=False)
        if error.hint:
            err_console.print(f"hint: {escape(error.hint)}", highlight=False)
    raise typer.Exit(2 if isinstance(error, (InputError, NotFoundError)) else 1)
