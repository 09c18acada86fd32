"""Durations as people write them in settings and on the command line: ``90``, ``30s``, ``5m``,
``1h``, ``4d`` (a bare number is seconds)."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d{1,12}(?:\.\d{1,9})?)\s*([smhd]?)\s*$")
_LONGEST = 100 * 366 * 86400  # a century: longer would overflow the clock's arithmetic


def parse_duration(text: str | int | float) -> float:
    """Return the duration in seconds; raise ValueError with the accepted forms otherwise."""
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        if text > _LONGEST:
            raise ValueError("a duration cannot be longer than a hundred years")
        return float(text)
    match = _DURATION.match(text.lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration; write e.g. 30s, 5m, 1h or 4d")
    number, unit = match.groups()
    seconds = float(number) * _UNITS[unit or "s"]
    if seconds > _LONGEST:
        raise ValueError(f"{text!r} is longer than a hundred years")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of a duration: 300 → '5m', 90 → '90s'."""
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
