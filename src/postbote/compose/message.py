"""Building the RFC 5322 message: headers encoded per RFC 2047, text and optional HTML as
multipart/alternative (RFC 2046 §5.1.4), CRLF line ends, lines within 78 characters."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from email.utils import format_datetime

from ..db.schema import utcnow
from ..errors import InvalidMessageError
from . import mime
from .addresses import Mailbox, check_header_value, parse_mailbox

_MAX_SUBJECT = 998  # RFC 5322 §2.1.1: no line longer than 998 characters


@dataclass(frozen=True, slots=True)
class Draft:
    """What a caller asks to send, before anything is checked."""

    sender: str
    recipients: list[str]
    subject: str
    text: str
    html: str | None = None
    reply_to: str | None = None
    headers: tuple[tuple[str, str], ...] = ()  # further fields, e.g. List-Unsubscribe (RFC 8058)
    cc: list[str] = field(default_factory=list)  # shown in Cc: (a shared copy only)
    bcc: list[str] = field(default_factory=list)  # envelope only: never in any header
    shared: bool = False  # one copy for all with To/Cc shown, instead of one copy per recipient


@dataclass(frozen=True, slots=True)
class ComposedMessage:
    id: str
    sender: Mailbox
    recipients: tuple[Mailbox, ...]
    subject: str
    message_id_header: str
    raw: bytes


def new_message_id() -> str:
    """Time-ordered, unguessable: 12 hex digits of milliseconds, then 16 random hex digits."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(8)}"


def compose(draft: Draft, *, id_domain: str, message_id: str | None = None) -> ComposedMessage:
    """Check the draft and build the bytes that go on the wire. Raises InputError subclasses."""
    sender = parse_mailbox(draft.sender, field="sender")
    shown_to = _unique_recipients(draft.recipients, allow_none=bool(draft.cc or draft.bcc))
    shown_cc = _unique_recipients(draft.cc, allow_none=True)
    # The envelope: everyone, once. Bcc recipients are in it and nowhere else (RFC 5322 §3.6.3).
    recipients = _unique_recipients([*draft.recipients, *draft.cc, *draft.bcc])
    check_header_value("subject", draft.subject)
    # Every header value is checked for injection before anything else is judged, so an attack
    # is always refused as one (header_injection), whatever else is wrong with the draft.
    reply_to = parse_mailbox(draft.reply_to, field="reply-to") if draft.reply_to else None
    if not draft.subject.strip():
        raise InvalidMessageError("The subject is empty.", hint="Give every message a subject.")
    if len(draft.subject) > _MAX_SUBJECT:
        raise InvalidMessageError(f"The subject is longer than {_MAX_SUBJECT} characters.")
    if not draft.text.strip() and not (draft.html or "").strip():
        raise InvalidMessageError("The message has no body.", hint="Give a text or an HTML body.")

    id_ = message_id or new_message_id()
    message_id_header = f"<{id_}@{id_domain}>"
    headers = [
        mime.address_header("From", [mime.address(sender.display_name, sender.address)]),
    ]
    if shown_to:
        headers.append(mime.address_header("To", [mime.address(r.display_name, r.address) for r in shown_to]))
    else:  # only Bcc recipients: RFC 5322 §3.6.3 allows To to be left out; say so rather than leak
        headers.append(mime.header("To", "undisclosed-recipients:;"))
    if shown_cc:
        headers.append(mime.address_header("Cc", [mime.address(r.display_name, r.address) for r in shown_cc]))
    if reply_to:
        headers.append(mime.address_header("Reply-To", [mime.address(reply_to.display_name, reply_to.address)]))
    headers += [
        mime.header("Subject", draft.subject),
        mime.header("Date", format_datetime(utcnow())),
        mime.header("Message-ID", message_id_header),
    ]
    for name, value in draft.headers:
        _check_extra(name, value)
        headers.append(mime.header(name, value))
    raw = mime.render(headers, draft.text or " ", draft.html or None)
    return ComposedMessage(
        id=id_,
        sender=sender,
        recipients=recipients,
        subject=draft.subject,
        message_id_header=message_id_header,
        raw=raw,
    )


_EXTRA_ALLOWED = {"list-unsubscribe", "list-unsubscribe-post", "list-id", "x-postbote-test"}


def _check_extra(name: str, value: str) -> None:
    # Only fields Postbote itself adds: a caller must never set From, To, Bcc or another field twice.
    if name.lower() not in _EXTRA_ALLOWED:
        raise InvalidMessageError(f"The header field {name!r} cannot be set.")
    check_header_value(name, value)


def _unique_recipients(addresses: list[str], *, allow_none: bool = False) -> tuple[Mailbox, ...]:
    if not addresses and allow_none:
        return ()
    if not addresses:
        raise InvalidMessageError("The message has no recipient.", hint="Give at least one 'to'.")
    seen: dict[str, Mailbox] = {}
    for text in addresses:
        mailbox = parse_mailbox(text, field="recipient")
        seen.setdefault(mailbox.address.lower(), mailbox)
    return tuple(seen.values())
