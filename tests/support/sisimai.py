"""The vendored Sisimai corpus (tests/data/sisimai): its labelled rows and the one split into a
tuning part and a held-out part.

The split is by file and by content: a file is held out when the first 32 bits of the SHA-256 of
its bytes, modulo 100, are below 30. Hashing the bytes rather than the name keeps the messages
that Sisimai's set carries twice under two names on the same side. Rules may be grown from the
tuning part only; the held-out part is read by the measuring tests and nothing else."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).parents[1] / "data" / "sisimai"
HELD_OUT_PERCENT = 30


@dataclass(frozen=True, slots=True)
class Row:
    file: str
    n: int
    status: str
    reply_code: str
    reason: str
    hard: bool
    feedback_type: str
    source: str


def is_held_out(raw: bytes) -> bool:
    return int(hashlib.sha256(raw).hexdigest()[:8], 16) % 100 < HELD_OUT_PERCENT


@cache
def rows() -> tuple[Row, ...]:
    with (ROOT / "expected.tsv").open(encoding="utf-8", newline="") as f:
        return tuple(Row(r["file"], int(r["n"]), r["status"], r["reply_code"], r["reason"], r["hard"] == "yes",
                         r["feedback_type"], r["source"]) for r in csv.DictReader(f, delimiter="\t"))


@cache
def files(part: str) -> tuple[str, ...]:
    """File names of one part: ``tuning``, ``held-out`` or ``all``."""
    names = sorted(p.name for p in (ROOT / "eml").glob("*.eml"))
    if part == "all":
        return tuple(names)
    held = part == "held-out"
    return tuple(n for n in names if is_held_out((ROOT / "eml" / n).read_bytes()) == held)


def raw(name: str) -> bytes:
    return (ROOT / "eml" / name).read_bytes()


def rows_of(part: str) -> list[Row]:
    wanted = set(files(part))
    return [r for r in rows() if r.file in wanted]
