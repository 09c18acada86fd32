"""One shape for every list of the API: ``{"<things>": [...], "next_cursor": ...}``, ``limit``
1–200 (default 50) and ``cursor``, the ``next_cursor`` of the page before (null on the last).

A cursor is the key of the last item of a page (a unique column the list is ordered by), tagged
with the list it belongs to, in URL-safe base64: the next page starts after that key, so items
added or removed between pages never make one repeat or go missing. Anything that is not a cursor
Postbote gave out for this list is 422 ``cursor_invalid``."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Callable, Sequence, TypeVar

from ..errors import InputError

MAX_PAGE = 200
DEFAULT_PAGE = 50
T = TypeVar("T")


def encode_cursor(value: str, kind: str = "") -> str:
    text = f"{kind}:{value}" if kind else value
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _invalid() -> InputError:
    return InputError("The cursor is not one Postbote gave out.", code="cursor_invalid",
                      hint="Pass next_cursor of the previous page unchanged, or leave it out for the first page.")


def decode_cursor(cursor: str | None, kind: str = "") -> str | None:
    if cursor is None:
        return None
    try:
        text = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _invalid() from None
    if not kind:
        return text
    tag, sep, value = text.partition(":")
    if tag != kind or not sep or not value:
        raise _invalid()
    return value


def decode_int_cursor(cursor: str | None, kind: str) -> int | None:
    value = decode_cursor(cursor, kind)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise _invalid()
    return int(value)


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"The limit must be between 1 and {MAX_PAGE}.", code="limit_invalid",
                         hint=f"Give a limit between 1 and {MAX_PAGE}; follow next_cursor for more.")
    return limit


def page_json(name: str, kind: str, rows: Sequence[T], limit: int, key: Callable[[T], Any],
              show: Callable[[T], dict]) -> dict:
    """``rows``: up to ``limit + 1`` items after the cursor, in the list's order; one more than
    ``limit`` means there is a next page, which starts after the last item shown."""
    shown = list(rows[:limit])
    more = len(rows) > limit and shown
    return {name: [show(r) for r in shown], "next_cursor": encode_cursor(str(key(shown[-1])), kind) if more else None}
