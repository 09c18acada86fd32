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


def refuse_line_breaks(field: str, value: str) -> None:
    """Header injection is impossible only if no header value can hold CR or LF."""
    if "\r" in value or "\n" in value:
        raise HeaderInjectionError(f"The {field} contains a line break, which is not allowed.")


def parse_mailbox(text: str, *, field: str = "address") -> Mailbox:
    refuse_line_breaks(field, text)
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
