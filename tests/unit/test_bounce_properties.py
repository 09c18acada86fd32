"""The bounce reader on hostile input: it never raises, and its time grows with the input's length,
not its square (a 164 KB line once froze the receiver for 12 s). The reader's own entry point
(``_read(read_message(...))``) is called, so the catch-all in ``parse_report`` hides nothing."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from postbote.inbound import parse_report
from postbote.inbound.mime import MAX_READ, read_message
from postbote.inbound.parse import KINDS, _read

MB = 1_000_000


def read(raw: bytes):
    return _read(read_message(raw))


def seconds(raw: bytes) -> float:
    start = time.perf_counter()
    report = read(raw)
    elapsed = time.perf_counter() - start
    assert report.kind in KINDS
    return elapsed


def _nested(depth: int) -> bytes:
    head = ['Content-Type: multipart/mixed; boundary="b0"\n\n']
    head += [f'--b{i - 1}\nContent-Type: multipart/mixed; boundary="b{i}"\n\n' for i in range(1, depth)]
    return "".join(head).encode()


BOUNCE = b"From: MAILER-DAEMON@mx.example\nSubject: Undelivered Mail Returned to Sender\n\n"
DSN_HEAD = (b'From: MAILER-DAEMON@mx.example\nContent-Type: multipart/report; report-type=delivery-status; '
            b'boundary="x"\n\n--x\nContent-Type: message/delivery-status\n\n')

# Each is several MB: long runs of address characters (what made the old pattern quadratic), a
# line of near-delimiters, deep MIME nesting, endless header folding, endless recipient blocks.
ADVERSARIAL = {
    "a run of address characters": BOUNCE + b"a" * (4 * MB),
    "a run of at-signs and dots": BOUNCE + b"a.@" * (MB + MB // 3),
    "an address-like run without a domain dot": BOUNCE + b"x@" + b"y" * (4 * MB),
    "one line of near-delimiters": b'Content-Type: multipart/mixed; boundary="b"\n\n' + b" --b" * MB,
    "deep nesting": _nested(60_000) + b"x\n" * 200_000,
    "an endless folded header": b"Subject: x\n" + b" fold fold fold\n" * 300_000 + b"\nbody",
    "endless recipient blocks": DSN_HEAD + b"Final-Recipient: rfc822; a@b.example\nAction: failed\n" * 80_000,
    "a line of dashes": BOUNCE + b"-" * (4 * MB),
    "unclosed tags": (b"From: MAILER-DAEMON@mx.example\nContent-Type: text/html\n\n" + b"<a" * (2 * MB)),
    "status-like digits": BOUNCE + b"5.5.5." * 700_000,
    "reply-like digits": BOUNCE + b"550-" * MB,
}


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_adversarial_inputs_of_several_megabytes_are_read_quickly(name):
    raw = ADVERSARIAL[name]
    assert len(raw) >= 2 * MB
    # Generous: a 2-core machine shared with other work reads each in well under a second.
    assert seconds(raw) < 5.0, name


def test_time_grows_linearly_with_the_input():
    """Twice the input may cost about twice the time, never four times (the square)."""
    def worst(n: int) -> float:
        raw = BOUNCE + (b"a" * 200 + b" ") * (n // 201)
        return min(seconds(raw) for _ in range(3))
    small, large = worst(MAX_READ // 4), worst(MAX_READ)
    assert large < 4 * small * 1.8 + 0.05, (small, large)


def test_what_is_read_is_bounded():
    """Beyond MAX_READ nothing is looked at: a 10 MB message costs what a 2 MB one does."""
    assert seconds(BOUNCE + b"a" * (10 * MB)) < 5.0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=20_000))
def test_random_bytes_never_raise(raw):
    assert read(raw).kind in KINDS


FRAGMENTS = [
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"q\"\n",
    b"Content-Type: multipart/mixed; boundary=q\n", b"--q\n", b"--q--\n", b"\n",
    b"Content-Type: message/delivery-status\n", b"Content-Type: message/rfc822\n",
    b"Content-Type: message/feedback-report\n", b"Content-Transfer-Encoding: base64\n",
    b"Content-Transfer-Encoding: quoted-printable\n", b"Final-Recipient: rfc822; a@b.example\n",
    b"Original-Recipient: rfc822;\n", b"X-Actual-Recipient: rfc822; <@>\n", b"Action: failed\n",
    b"Status: 5.1.1\n", b"Status: 9.9\n", b"Diagnostic-Code: smtp; 550 5.1.1 no\n", b" folded\n",
    b"From: MAILER-DAEMON@x.example\n", b"Subject: =?utf-8?b?////?=\n", b"Auto-Submitted: auto-replied\n",
    b"Feedback-Type: abuse\n", b"X-HmXmrOriginalRecipient: c@d.example\n", b'{"notificationType":"Bounce"}\n',
    b"From: no-reply@sns.amazonaws.com\n", b"<x@y.example>: 550 user unknown\n", b"\xff\xfe\x00",
    b"Content-Type: text/plain; charset=\"x-unknown\"\n", b"Content-Type: text/plain; charset=iso-2022-jp\n",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=40), max_size=80))
def test_messages_built_from_report_fragments_never_raise(pieces):
    report = read(b"".join(pieces))
    assert report.kind in KINDS
    for recipient in report.recipients:
        assert "@" in recipient.address or report.kind == "auto_reply"
        assert len(recipient.diagnostic) <= 1000


def test_the_public_function_answers_unreadable_for_nonsense():
    for raw in (b"", b"\x00" * 1000, _nested(5000)):
        assert parse_report(raw).kind == "unreadable"


# ------------------------------------------------------------------ properties over generated shapes

def _repeat(piece: bytes, size: int) -> bytes:
    return piece * (size // len(piece) + 1)


LONG_PIECES = [b"a" * 3000, b"x@" + b"y" * 3000, b"-" * 3000, b"550-5.1.1 " * 300, b"<a" * 1500, b" --b" * 800]


# A run of one character, of any length: what made the old address pattern cost the square.
RUNS = st.builds(lambda char, n: char * n, st.sampled_from([b"a", b"@", b".", b"-", b"5", b" ", b"<", b"="]),
                 st.integers(min_value=500, max_value=6000))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(unit=st.lists(st.sampled_from(FRAGMENTS + LONG_PIECES) | RUNS | st.binary(min_size=1, max_size=60),
                     min_size=1, max_size=12),
       depth=st.integers(min_value=0, max_value=40))
@example(unit=[b"a" * 3000], depth=0)
@example(unit=[b"x@" + b"y" * 3000], depth=6)
@example(unit=[b"550-5.5.5." * 400, b"\n"], depth=0)
def test_time_grows_linearly_for_any_repeated_shape(unit, depth):
    """Whatever the message is made of (report fields, random bytes, lines of any length, MIME
    nesting in front), four times the input costs about four times the time, never sixteen."""
    sender = b"From: MAILER-DAEMON@mx.example\nSubject: Undelivered Mail Returned to Sender\n"
    head, piece = sender + (_nested(depth) if depth else b"\n"), b"".join(unit)

    def cost(size: int) -> float:
        raw = head + _repeat(piece, size)
        return min(seconds(raw) for _ in range(2))
    small, large = cost(MAX_READ // 8), cost(MAX_READ // 2)
    assert large < 4 * small * 2.5 + 0.15, (small, large, piece[:80])
    assert large < 2.5, (large, piece[:80])  # a square bounded by a cut is still too slow: 64 K² steps


def _mime_tree():
    """Random MIME trees: multiparts with matching, wrong or missing boundaries, attached
    messages, report parts and leaves of random bytes, nested to any depth."""
    leaf = st.tuples(st.sampled_from(["text/plain", "message/delivery-status", "message/feedback-report",
                                      "text/rfc822-headers", "text/html", "application/octet-stream"]),
                     st.sampled_from(["", "base64", "quoted-printable", "8bit"]),
                     st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=30), max_size=8)).map(_leaf)
    return st.recursive(leaf, lambda children: st.one_of(
        st.tuples(st.sampled_from(["mixed", "report", "alternative"]), st.sampled_from(["b", "b1", '"a b"', ""]),
                  st.booleans(), st.lists(children, max_size=4)).map(_multipart),
        children.map(lambda inner: b"Content-Type: message/rfc822\n\n" + inner)), max_leaves=30)


def _leaf(spec: tuple[str, str, list[bytes]]) -> bytes:
    ctype, encoding, body = spec
    head = f"Content-Type: {ctype}\n" + (f"Content-Transfer-Encoding: {encoding}\n" if encoding else "")
    return head.encode() + b"\n" + b"".join(body)


def _multipart(spec: tuple[str, str, bool, list[bytes]]) -> bytes:
    subtype, boundary, closed, parts = spec
    param = f"; boundary={boundary}" if boundary else ""
    delimiter = b"--" + boundary.strip('"').encode()
    body = b"".join(delimiter + b"\n" + part + b"\n" for part in parts) + (delimiter + b"--\n" if closed else b"")
    return f"Content-Type: multipart/{subtype}{param}; report-type=delivery-status\n\n".encode() + body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_mime_tree(), depth=st.integers(min_value=0, max_value=3000))
def test_mime_trees_of_any_shape_and_depth_never_raise(tree, depth):
    report = read(_nested(depth) + tree if depth else b"From: MAILER-DAEMON@mx.example\n" + tree)
    assert report.kind in KINDS
    for recipient in report.recipients:
        assert "@" in recipient.address or report.kind == "auto_reply"
