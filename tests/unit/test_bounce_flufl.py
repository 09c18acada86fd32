"""The bounce reader on Mailman's bounce collection (tests/data/flufl-bounce, flufl.bounce's own
labelled test messages): the failed recipients it finds, and whether it calls them failed or
delayed, against what flufl.bounce's tests expect."""

from __future__ import annotations

import csv
from pathlib import Path

from postbote.inbound import parse_report

ROOT = Path(__file__).parents[1] / "data" / "flufl-bounce"
# Measured when the corpus was added: 103 of 111 (95 before the reader rounds grown partly from it).
FLOOR = 103


def _rows() -> list[dict[str, str]]:
    with (ROOT / "expected.tsv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _agrees(row: dict[str, str]) -> bool:
    report = parse_report((ROOT / "eml" / row["file"]).read_bytes())
    expected = set(row["addresses"].split())
    found = {r.address: r.action for r in report.recipients if r.action in ("failed", "delayed")}
    action = "delayed" if row["temporary"] == "yes" else "failed"
    return set(found) == expected and all(found[a] == action for a in expected)


def test_every_labelled_file_is_there():
    rows = _rows()
    assert len(rows) == 111 and all((ROOT / "eml" / r["file"]).is_file() for r in rows)
    assert all(r["addresses"] and r["temporary"] in ("yes", "no") for r in rows)


def test_the_reader_finds_the_failed_recipients_of_mailmans_collection():
    rows = _rows()
    right = sum(_agrees(r) for r in rows)
    print(f"\nflufl.bounce collection: {right} of {len(rows)} files with exactly the expected addresses and action")
    assert right >= FLOOR
