"""How the CLI speaks: tables and sentences for people, one JSON document with ``--json``, and
errors as ``error[code]: sentence`` plus a hint on stderr (or an ``error`` object with --json)."""

from __future__ import annotations

import json
import re
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import InputError, NotFoundError, PostboteError

# What stored data must never bring to a terminal: control characters (ESC starts a terminal
# command, CR overwrites the line), the C1 set, and the bidirectional overrides that reorder what
# is shown (CVE-2021-42574). Each is shown as its escape, e.g. \x1b or \u202e.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def clean(text: Any) -> str:
    """Text from the store or from the network, safe to print: controls escaped (newlines and tabs kept)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


def cell(text: Any) -> str:
    """Text from the store for a place where rich reads markup (a table cell, a printed string)."""
    return escape(clean("" if text is None else text))


def clean_data(data: Any) -> Any:
    """The same for every string in a JSON-like value, before it is rendered for people."""
    if isinstance(data, str):
        return clean(data)
    if isinstance(data, dict):
        return {k: clean_data(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [clean_data(v) for v in data]
    return data


class SafeConsole(Console):
    """A console that escapes control characters in every string it renders, whoever wrote it."""

    def render_str(self, text: str, *args, **kwargs):
        return super().render_str(clean(text), *args, **kwargs)


console = SafeConsole()
err_console = SafeConsole(stderr=True)


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
