"""Addresses as written by callers (``Anna <anna@example.com>`` or ``anna@example.com``) turned
into what goes on the envelope and in the headers. Full recipient validation (DNS, typos,
suppression) lives in ``recipients/``; this is the syntax every face needs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.headerregistry import Address

from ..errors import HeaderInjectionError, InvalidAddressError

# RFC 5322 §3.2.3 atext, plus dots between atoms (dot-atom); quoted local parts are refused:
# receivers handle them badly and nobody's notification address needs one.
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True, slots=True)
class Mailbox:
    address: str  # local@domain, domain in lower case and ASCII (IDNA)
    display_name: str = ""

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]

    def header(self) -> Address:
        local, _, domain = self.address.rpartition("@")
        return Address(display_name=self.display_name, username=local, domain=domain)


# Every character some parser takes for the end of a line or for no character at all: the C0
# controls (NUL, TAB, VT, FF, FS, GS, RS … — the standard library's header folder breaks lines at
# VT, FF, FS, GS and RS, as str.splitlines does), DEL, the C1 controls (NEL, U+0085, among them),
# and the Unicode line and paragraph separators; lone surrogates cannot be encoded at all.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def unsafe_character(value: str) -> str | None:
    """The first character that must never be in a header value, or None."""
    match = _UNSAFE.search(value)
    return match.group() if match else None


def check_header_value(field: str, value: str) -> None:
    """The one check every header value passes (API, CLI and workflows alike, through compose
    and parse_mailbox): header injection is impossible only if no value can hold anything a
    parser reads as a line break."""
    char = unsafe_character(value)
    if char is not None:
        kind = ("a line break" if char.splitlines() != [char] else
                "a lone surrogate" if 0xD800 <= ord(char) <= 0xDFFF else "a control character")
        raise HeaderInjectionError(f"The {field} contains {kind} (U+{ord(char):04X}), which is not allowed in a header.")


refuse_line_breaks = check_header_value  # the older name, kept for callers


def parse_mailbox(text: str, *, field: str = "address") -> Mailbox:
    check_header_value(field, text)
    text = text.strip()
    name, addr = _split_display_name(text)
    if not addr or addr.count("@") != 1:
        raise InvalidAddressError(f"The {field} {text!r} is not an e-mail address.")
    local, domain = addr.split("@")
    if not _LOCAL.match(local) or len(local) > 64:
        raise InvalidAddressError(
            f"The {field} {text!r} has a local part Postbote cannot send to.",
            hint="Use letters, digits and . _ + - before the @; no spaces or quotes.",
        )
    return Mailbox(address=f"{local}@{normalize_domain(domain, field=field, text=text)}",
                   display_name=name.strip())


def _split_display_name(text: str) -> tuple[str, str]:
    """``Name <addr>`` as people type it: everything before the last '<' is the name, commas and
    all (quotes around it are dropped); the header encoder quotes it again where needed."""
    if text.endswith(">") and "<" in text:
        name, _, addr = text[:-1].rpartition("<")
        name = name.strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = name[1:-1].replace('\\"', '"')
        return name, addr.strip()
    return "", text


def normalize_domain(domain: str, *, field: str = "domain", text: str | None = None) -> str:
    """Lower-case ASCII form of a domain; internationalised names become A-labels (IDNA)."""
    shown = text or domain
    domain = domain.strip().rstrip(".").lower()
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidAddressError(f"The {field} {shown!r} has an invalid domain.") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or len(ascii_domain) > 253 or not all(_LABEL.match(x) for x in labels):
        raise InvalidAddressError(
            f"The {field} {shown!r} has an invalid domain.",
            hint="A domain needs at least two labels of letters, digits and hyphens, "
            "e.g. example.com.",
        )
    return ascii_domain
