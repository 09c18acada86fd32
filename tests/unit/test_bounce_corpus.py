"""The bounce reader and the reply classifier on Sisimai's labelled corpus of real bounces
(tests/data/sisimai, split once by content hash: tests/support/sisimai.py). The tuning part is
what the rules were grown from; the held-out part was never looked at while writing them. Both
are printed (``pytest -s``); the floors are asserted on the held-out part only."""

from __future__ import annotations

import pytest

from postbote.inbound import parse_report
from postbote.vocab import ReplyCategory
from tests.support import sisimai

# Floors on the held-out part: just below the figures measured after the last round of rules grown
# from the tuning part (87.4%, 72.6%, 72.6%, 91.0%; first frozen at 87.4%, 70.4%, 70.2%, 91.0%). The
# issue asks for 97% (count and status), 95% (category), 95% and 98% (the classifier); these are
# short of that, and the README says so. Raise them only with rules grown from the tuning part.
HELD_OUT_FLOORS = {"count_and_status": 87.0, "category": 72.5, "reply_category": 72.5, "retry": 90.9}


@pytest.fixture(scope="module")
def scores():
    return {part: sisimai.score(part) for part in ("held-out", "tuning")}


def _line(part: str, s: sisimai.Score) -> str:
    return (f"{part:9} rows {s.rows:3}  count+status {s.percent('count_and_status'):5.1f}%  "
            f"category {s.percent('category'):5.1f}%  classifier: category "
            f"{s.percent('reply_category', 'reply_category_rows'):5.1f}% of {s.reply_category_rows}, "
            f"retry {s.percent('retry', 'retry_rows'):5.1f}% of {s.retry_rows}")


def test_the_split_is_fixed_and_keeps_twins_together():
    held, tuning = set(sisimai.files("held-out")), set(sisimai.files("tuning"))
    assert not held & tuning and len(held | tuning) == len(sisimai.files("all")) == 435
    assert 100 <= len(held) <= 160  # about 30% of the files
    by_content: dict[bytes, set[bool]] = {}
    for name in sisimai.files("all"):
        by_content.setdefault(sisimai.raw(name), set()).add(name in held)
    assert all(len(sides) == 1 for sides in by_content.values())


def test_every_reason_is_mapped_to_a_category_postbote_has():
    kinds = {"complaint", "auto_reply", "delivered"}
    for reason in {r.reason for r in sisimai.rows()}:
        assert reason in sisimai.MAPPING, reason
        for category in sisimai.accepted(reason):
            assert category in kinds or category in {c.value for c in ReplyCategory}, (reason, category)


def test_agreement_with_sisimai_tuned_and_held_out(scores):
    print()
    for part, s in scores.items():
        print(_line(part, s) + ("   (rules grown from this part)" if part == "tuning" else ""))
    held = scores["held-out"]
    assert held.percent("count_and_status") >= HELD_OUT_FLOORS["count_and_status"]
    assert held.percent("category") >= HELD_OUT_FLOORS["category"]


def test_the_classifier_on_held_out_diagnostics(scores):
    held = scores["held-out"]
    assert held.percent("reply_category", "reply_category_rows") >= HELD_OUT_FLOORS["reply_category"]
    assert held.percent("retry", "retry_rows") >= HELD_OUT_FLOORS["retry"]


def test_auto_replies_are_never_counted_as_bounces():
    """RFC 3834 replies (Sisimai's reason "vacation") come out as auto_reply, with no failed
    recipient; and no bounce of the corpus is taken for one (that would lose a failure). One
    held-out complaint, an opt-out sent as "Auto-Submitted: auto-replied", is read as an
    auto-reply: no bounce either way, but a missed complaint (see the README)."""
    vacation = {r.file for r in sisimai.rows() if r.reason == "vacation"}
    failures = {r.file for r in sisimai.rows() if r.reason not in ("vacation", "feedback", "delivered")}
    assert len(vacation) >= 4
    for name in sisimai.files("all"):
        report = parse_report(sisimai.raw(name))
        if name in vacation:
            assert report.kind == "auto_reply", name
            assert not [r for r in report.recipients if r.action == "failed"], name
        elif name in failures:
            assert report.kind != "auto_reply", name
