"""The name Postbote gives in EHLO. RFC 5321 §4.1.1.1 asks for the client's fully qualified
domain name; many receivers refuse `localhost`, bare host names and names that do not resolve,
so delivery does not start with one that cannot be right."""

from __future__ import annotations

import ipaddress
import re

from ..errors import ConfigError
from ..settings import Settings

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NOT_PUBLIC = {"localhost", "localdomain", "local", "internal", "lan", "home", "invalid"}


def helo_problem(name: str) -> str | None:
    """Why ``name`` is no FQDN to greet with, or None when it is one."""
    name = name.rstrip(".").lower()
    if not name:
        return "it is empty"
    try:
        ipaddress.ip_address(name.strip("[]"))
        return "it is an address, not a name"
    except ValueError:
        pass
    labels = name.split(".")
    if len(labels) < 2:
        return "it has no domain part"
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        return "it is not a valid host name"
    if labels[-1] in _NOT_PUBLIC or labels[-1].isdigit():
        return f"'.{labels[-1]}' is no public top-level domain"
    return None


def check_helo_name(settings: Settings) -> str:
    """The EHLO name, or a ConfigError that says why it will not do."""
    name = settings.helo_name
    problem = helo_problem(name)
    if problem:
        source = "HELO_NAME" if settings.HELO_NAME else "this machine's name (HELO_NAME is empty)"
        raise ConfigError(
            f"The EHLO name {name!r} from {source} is not a fully qualified domain name: {problem}.",
            code="helo_name_invalid",
            hint="Set HELO_NAME (POSTBOTE_HELO_NAME) to this host's public name, e.g. mail.example.com, "
            "one whose address has a matching PTR record.",
        )
    return name
