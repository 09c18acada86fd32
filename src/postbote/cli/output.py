"""How the CLI speaks: tables and sentences for people, one JSON document with ``--json``, and
errors as ``error[code]: sentence`` plus a hint on stderr (or an ``error`` object with --json)."""

from __future__ import annotations

import json
import re
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console, Group
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from ..errors import ConfigError, DnsUpdateError, PostboteError, StoreError

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



class _UnbrokenConsole(SafeConsole):
    """A console that never breaks what a user must copy — ids, addresses, records, keys.

    Text is printed soft-wrapped (Rich inserts no line breaks; the terminal folds long lines on
    screen, and a copy gives the whole line). A table is laid out at least as wide as its widest
    word needs (its widest line where a column is ``no_wrap``), even beyond the terminal's width,
    so that no cell is folded inside a word or cut off with an ellipsis."""

    def __init__(self, **kwargs):
        super().__init__(soft_wrap=True, **kwargs)

    def print(self, *objects, **kwargs):  # noqa: A003 - Rich's name
        parts = []
        for item in objects:
            parts.extend(item.renderables if isinstance(item, Group) else [item])
        if not any(isinstance(part, Table) for part in parts):
            return super().print(*parts, **kwargs)
        for part in parts:
            if isinstance(part, Table):
                self._print_table(part, **kwargs)
            else:
                super().print(part, **kwargs)

    def _print_table(self, table: Table, **kwargs) -> None:
        wide = self.options.update(max_width=100_000)
        measured = Measurement.get(self, wide, table)
        needed = measured.maximum if any(c.no_wrap for c in table.columns) else measured.minimum
        width = self.width
        try:
            self.width = max(width, needed)
            super().print(table, **kwargs)
        finally:
            self.width = width


console = _UnbrokenConsole()
err_console = _UnbrokenConsole(stderr=True)


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
    raise typer.Exit(exit_code(error))


def exit_code(error: PostboteError) -> int:
    """1 for trouble with the configuration, the store or the platform's DNS server; 2 for bad
    input, unknown things and conflicts (a name taken is the caller's to change)."""
    return 1 if isinstance(error, (ConfigError, StoreError, DnsUpdateError)) else 2
