"""Rendering RFC 5322 / MIME bytes directly. The standard library's EmailMessage does the same at
about 900 messages per second on this hardware — slower than the delivery engine it feeds; this
renderer writes the few shapes Postbote sends (text, or text and HTML as multipart/alternative)
several times faster. Header encoding and folding (RFC 2047, RFC 5322 §2.2.3) and
quoted-printable (RFC 2045 §6.7) still come from the standard library's proven encoders; the
output is checked against the standard library's parser in the tests."""

from __future__ import annotations

import secrets
from email import quoprimime
from email.header import Header
from email.utils import formataddr

from .addresses import unsafe_character

CRLF = "\r\n"
_MAX_LINE = 998  # RFC 5322 §2.1.1


def header(name: str, value: str) -> str:
    """One header field, encoded and folded. Callers have refused unsafe characters already;
    this is the last line of defence, because the folder would turn some of them into line breaks."""
    if unsafe_character(value) is not None:
        raise ValueError(f"unsafe character in the {name} header")
    # Written as it is only when a parser reads it back unchanged: no space at either end (the
    # parser drops it) and nothing that looks like an encoded word (RFC 2047 §2: "=?").
    plain = value.isascii() and value == value.strip() and "=?" not in value
    if plain and len(name) + 2 + len(value) <= 78:
        return f"{name}: {value}{CRLF}"
    charset = "us-ascii" if plain else "utf-8"
    return f"{name}: {Header(value, charset, header_name=name).encode(linesep=CRLF)}{CRLF}"


def address(display_name: str, addr: str) -> str:
    """``Name <addr>``: quoted when the name has specials, an encoded word when not ASCII."""
    return formataddr((display_name, addr), charset="utf-8")


def address_header(name: str, mailboxes: list[str]) -> str:
    # One mailbox per line keeps long recipient lists within the line limit.
    return f"{name}: {(',' + CRLF + ' ').join(mailboxes)}{CRLF}"


def _body(text: str, subtype: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    lines = text.split("\n")
    if text.isascii() and all(len(line) <= _MAX_LINE for line in lines):
        encoding, body = "7bit", CRLF.join(lines)
    else:
        # quoprimime works on one character per byte: give it the UTF-8 bytes as latin-1.
        raw = text.encode("utf-8").decode("latin-1")
        encoding, body = "quoted-printable", quoprimime.body_encode(raw, maxlinelen=76, eol=CRLF)
        if not body.endswith(CRLF):
            body += CRLF
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
        f"Content-Transfer-Encoding: {encoding}{CRLF}{CRLF}{body}"
    )


def render(headers: list[str], text: str, html: str | None) -> bytes:
    """The whole message: header lines (from ``header``/``address_header``), then the body."""
    head = "".join(headers) + f"MIME-Version: 1.0{CRLF}"
    if html is None:
        return (head + _body(text, "plain")).encode("ascii")
    boundary = f"=_pb_{secrets.token_hex(12)}"  # '=_' cannot occur in quoted-printable text
    return (
        head
        + f'Content-Type: multipart/alternative; boundary="{boundary}"{CRLF}{CRLF}'
        + f"--{boundary}{CRLF}{_body(text, 'plain')}"
        + f"--{boundary}{CRLF}{_body(html, 'html')}"
        + f"--{boundary}--{CRLF}"
    ).encode("ascii")
