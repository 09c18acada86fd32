"""The vendored Sisimai corpus (tests/data/sisimai): its labelled rows and the one split into a
tuning part and a held-out part.

The split is by file and by content: a file is held out when the first 32 bits of the SHA-256 of
its bytes, modulo 100, are below 30. Hashing the bytes rather than the name keeps the messages
that Sisimai's set carries twice under two names on the same side. Rules may be grown from the
tuning part only; the held-out part is read by the measuring tests and nothing else."""

from __future__ import annotations

import csv
import hashlib
import tomllib
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


# ------------------------------------------------------------------------------------- scoring
# A row's status is right when it is Sisimai's, or — where Sisimai gives one of its own codes
# X.0.9xx, which it makes up when a message names no code — when the class is the same.
# Rows carry no address, so a file's rows are matched to the reader's recipients as a multiset:
# a row counts only when the file yields exactly as many recipients as Sisimai reports.

MAPPING = tomllib.loads((ROOT.parent / "sisimai-reasons.toml").read_text(encoding="utf-8"))
REPORT_KINDS = {"complaint": "complaint", "auto_reply": "auto_reply"}


def status_agrees(expected: str, got: str | None) -> bool:
    if not expected:
        return True
    klass, subject, detail = expected.split(".")
    if subject == "0" and int(detail) >= 900:
        return bool(got) and got[0] == klass
    return expected == got


def accepted(reason: str, action: str | None = None) -> set[str]:
    entry = MAPPING[reason]
    if action == "delayed" and "delayed" in entry:
        return {entry["delayed"]}
    return {entry["category"], *entry.get("also", [])}


def expected_retry(row: Row) -> bool | None:
    """What a sender should do with the row's reply, given synchronously; None where the row is
    no reply one could retry (complaints, auto-replies, deliveries, and expiries, which report
    retries already made)."""
    retry = MAPPING[row.reason].get("retry")
    if retry is None or row.reason == "expired":
        return None
    if retry == "status":
        return row.status[:1] == "4"
    return retry == "yes"


@dataclass(slots=True)
class Outcome:
    """One file as the reader and the classifier see it: per recipient (category, retry decision
    of the reply alone, status)."""

    kind: str
    seen: list[tuple[str, bool | None, str | None, str]]  # category, retry, status, action


def read_file(name: str) -> Outcome:
    from postbote.inbound import parse_report
    from postbote.inbound.meaning import classify_recipient, reply_of
    from postbote.replies import classify

    report = parse_report(raw(name))
    if report.kind in REPORT_KINDS:
        count = len(report.original_recipients) or 1 if report.kind == "complaint" else 1
        return Outcome(report.kind, [(REPORT_KINDS[report.kind], None, None, "")] * count)
    seen = []
    for r in report.recipients:
        if r.action == "delivered":
            seen.append(("delivered", None, r.status, r.action))
        else:
            seen.append((classify_recipient(r).category.value, classify(reply_of(r)).temporary, r.status, r.action))
    return Outcome(report.kind, seen)


@dataclass(slots=True)
class Score:
    rows: int = 0
    count_and_status: int = 0
    category: int = 0
    retry_rows: int = 0
    retry: int = 0
    reply_category_rows: int = 0
    reply_category: int = 0

    def percent(self, name: str, of: str = "rows") -> float:
        total = getattr(self, of)
        return 100.0 * getattr(self, name) / total if total else 100.0


def score(part: str) -> Score:
    result = Score()
    by_file: dict[str, list[Row]] = {}
    for row in rows_of(part):
        by_file.setdefault(row.file, []).append(row)
    for name, expected in by_file.items():
        outcome = read_file(name)
        result.rows += len(expected)
        same_count = len(outcome.seen) == len(expected)
        statuses = [s[2] for s in outcome.seen]
        categories = [(s[0], s[3]) for s in outcome.seen]
        for row in expected:
            if same_count:
                match = next((i for i, s in enumerate(statuses) if status_agrees(row.status, s)), None)
                if match is not None:
                    statuses.pop(match)
                    result.count_and_status += 1
                hit = next((i for i, (c, action) in enumerate(categories) if c in accepted(row.reason, action)), None)
                if hit is not None:
                    categories.pop(hit)
                    result.category += 1
            _score_reply(result, row, outcome)
    return result


def _score_reply(result: Score, row: Row, outcome: Outcome) -> None:
    """The classifier on the diagnostic the reader found for the row (its file's first recipient
    whose category the mapping accepts, else its first recipient)."""
    retry = expected_retry(row)
    failures = [s for s in outcome.seen if s[1] is not None]
    if MAPPING[row.reason]["category"] in ("complaint", "auto_reply", "delivered"):
        return
    result.reply_category_rows += 1
    chosen = next((s for s in failures if s[0] in accepted(row.reason, s[3])), failures[0] if failures else None)
    if chosen is not None and chosen[0] in accepted(row.reason, chosen[3]):
        result.reply_category += 1
    if retry is not None:
        result.retry_rows += 1
        result.retry += chosen is not None and chosen[1] == retry
