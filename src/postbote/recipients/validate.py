"""Checking recipients when a message is accepted: syntax (RFC 5321/5322 as used in practice, IDN
and SMTPUTF8 through email-validator), whether the domain exists and accepts mail (MX, implicit MX,
null MX per RFC 7505) through the one resolver and its cache, and the tenant's suppression list.
A DNS timeout is no reason to refuse: delivery decides then."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from ..dns import DnsTemporaryError, Resolver
from ..settings import Settings
from .normalize import canonical_or_none
from .suggest import suggest
from .suppression import Suppression

# code → (sentence, hint); the sentence takes the address.
REASONS = {
    "syntax_invalid": ("{address} is not a valid e-mail address: {detail}", "Check the address for typos."),
    "smtputf8_not_supported": ("{address} has non-ASCII characters before the @, which Postbote cannot send to yet.",
                               "Ask for an address without special characters before the @."),
    "domain_not_found": ("The domain of {address} does not exist.", "Check the part after the @ for typos."),
    "domain_accepts_no_mail": ("The domain of {address} accepts no e-mail (null MX, RFC 7505).",
                               "Ask the person for another address."),
    "domain_has_no_mail_server": ("The domain of {address} has no mail server.", "Check the part after the @."),
    "suppressed": ("{address} is on the suppression list since {since} ({detail}).",
                   "Remove it from the suppression list, with a reason, once the address is confirmed."),
}


@dataclass(frozen=True, slots=True)
class AddressCheck:
    address: str  # as given
    ok: bool
    normalized: str | None
    reason: str | None  # a code of REASONS
    message: str | None
    hint: str | None
    suggestion: str | None
    dns_checked: bool = True  # False when DNS did not answer in time (accepted anyway)

    def to_dict(self) -> dict:
        return {"address": self.address, "ok": self.ok, "normalized": self.normalized, "reason": self.reason,
                "message": self.message, "hint": self.hint, "suggestion": self.suggestion}


def _refused(address: str, normalized: str | None, code: str, suggestion: str | None = None, **fields) -> AddressCheck:
    sentence, hint = REASONS[code]
    return AddressCheck(address, False, normalized, code, sentence.format(address=address, **fields), hint, suggestion)


def check_syntax(address: str, settings: Settings) -> AddressCheck:
    try:
        result = validate_email(address.strip(), check_deliverability=False, allow_smtputf8=True,
                                test_environment=settings.ALLOW_TEST_DOMAINS)
    except EmailNotValidError as exc:
        return _refused(address, None, "syntax_invalid", suggest(address.strip()), detail=str(exc).rstrip("."))
    if result.ascii_email is None:
        return _refused(address, result.normalized, "smtputf8_not_supported")
    return AddressCheck(address, True, result.ascii_email, None, None, None, None)


async def check_address(address: str, settings: Settings, resolver: Resolver,
                        suppressed: dict[str, Suppression] | None = None) -> AddressCheck:
    syntax = check_syntax(address, settings)
    if not syntax.ok:
        return syntax
    normalized = syntax.normalized
    domain = normalized.rpartition("@")[2]
    try:
        mx = await resolver.mx(domain)
    except DnsTemporaryError:
        return AddressCheck(address, True, normalized, None, None, None, suggest(normalized), dns_checked=False)
    if mx.nxdomain:
        return _refused(address, normalized, "domain_not_found", suggest(normalized, domain_exists=False))
    if mx.null_mx:
        return _refused(address, normalized, "domain_accepts_no_mail", suggest(normalized, domain_exists=True))
    if mx.no_address:
        return _refused(address, normalized, "domain_has_no_mail_server", suggest(normalized, domain_exists=False))
    entry = suppressed.get(canonical_or_none(address) or normalized.lower()) if suppressed else None
    if entry is not None:
        return _refused(address, normalized, "suppressed", since=entry.created_at.strftime("%Y-%m-%d"),
                        detail=entry.reason)
    # A real, mail-accepting domain: a suggestion only where it is still far likelier a slip.
    return AddressCheck(address, True, normalized, None, None, None, suggest(normalized, domain_exists=True))


async def check_addresses(addresses: list[str], settings: Settings, resolver: Resolver,
                          suppressed: dict[str, Suppression] | None = None) -> list[AddressCheck]:
    """In the order given; DNS lookups of distinct domains run concurrently (and are cached)."""
    return list(await asyncio.gather(*(check_address(a, settings, resolver, suppressed) for a in addresses)))
