"""One spelling per address, for every list that must match what sending sends to: the display
name dropped, the domain in ASCII (IDNA), the whole address in lower case — through the same
parser (``parse_mailbox``) and validator (email-validator) that acceptance uses, so an entry made
from ``"Lea <Lea@Kunde.example> "`` matches the message sent to ``lea@kunde.example``."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from ..compose import parse_mailbox
from ..errors import InputError, InvalidAddressError

MAX_INPUT = 1000  # characters; an address is at most 254 (RFC 5321 §4.5.3.1), a name beside it a few dozen


def canonical_address(text: str) -> str:
    """The stored form of an address; InvalidAddressError (or HeaderInjectionError) when ``text``
    is not one address Postbote could send to."""
    if len(text) > MAX_INPUT:
        raise InvalidAddressError(f"The address is {len(text)} characters long; an address has at most 254.")
    mailbox = parse_mailbox(text, field="address")
    try:
        # .test names are allowed here whatever ALLOW_TEST_DOMAINS says: a list entry sends nothing.
        result = validate_email(mailbox.address, check_deliverability=False, allow_smtputf8=False,
                                test_environment=True)
    except EmailNotValidError as exc:
        raise InvalidAddressError(f"{text!r} is not an e-mail address: {str(exc).rstrip('.')}.") from None
    return result.ascii_email.lower()


def canonical_or_none(text: str) -> str | None:
    try:
        return canonical_address(text)
    except InputError:
        return None
