"""Finding addresses and codes in the text of a notice, in linear time.

An address pattern such as ``[chars]+@[chars]+`` retried at every position of a long run of
address characters costs the square of the run's length (a 164 KB line took 12 s). Here addresses
are found from each ``@`` outwards with bounded scans (RFC 5321 §4.5.3.1: 64 octets of local part,
255 of domain), every pattern has bounded repetition, and lines are cut to ``MAX_LINE``."""

from __future__ import annotations

import re

MAX_LINE = 2000  # characters of one line that are looked at
MAX_LINES = 4000  # lines of one notice that are looked at
_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.!#$%&'*+/=?^_`{|}~-")
_DOMAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-[]:")
# RFC 3463 §2 enhanced status code, not part of a longer dotted number (an IP, a version).
STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
# An SMTP reply code at a word start, followed by a space, a dash or the end (RFC 5321 §4.2).
REPLY_CODE = re.compile(r"(?<![\w.#-])([245][0-5]\d)(?=[ ,;-]|$)")


def lines(text: str) -> list[str]:
    return [line[:MAX_LINE] for line in text.split("\n", MAX_LINES)[:MAX_LINES]]


def addresses(text: str, limit: int = 50) -> list[str]:
    """The addresses in a piece of text, lower-cased, in order, each once."""
    found: list[str] = []
    at = text.find("@")
    while at >= 0 and len(found) < limit:
        start = at
        while start > 0 and at - start < 64 and text[start - 1] in _LOCAL:
            start -= 1
        end = at + 1
        while end < len(text) and end - at < 255 and text[end] in _DOMAIN:
            end += 1
        local, domain = text[start:at].strip(".'`=/"), text[at + 1:end].strip(".-:[]")
        if local[:5].lower() == "smtp=":  # Exchange's X.400 form names the address "…;dda:SMTP=user@host"
            local = local[5:]
        if local and "." in domain and not domain.startswith("."):
            address = f"{local}@{domain}".lower()
            if address not in found:
                found.append(address)
        at = text.find("@", end)
    return found


def first_address(text: str) -> str | None:
    found = addresses(text, limit=1)
    return found[0] if found else None


def status_in(text: str) -> str | None:
    match = STATUS.search(text)
    return ".".join(match.groups()) if match else None


def reply_code_in(text: str) -> int | None:
    match = REPLY_CODE.search(text)
    return int(match.group(1)) if match else None


def squash(text: str, limit: int = 1000) -> str:
    """Whitespace collapsed, cut to a length a table or event can hold."""
    return " ".join(text[: limit * 4].split())[:limit]
