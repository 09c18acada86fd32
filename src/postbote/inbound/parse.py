"""Reading what comes back: delivery status notifications (RFC 3464), complaint reports (ARF,
RFC 5965, and Hotmail's older form), automatic replies (RFC 3834, never a bounce) and the many
bounces in prose. Pure, bounded and linear in the input (``mime``, ``text``): a message that
cannot be read is a Report of kind ``unreadable``, never an exception."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import dsn
from .arf import read_complaint
from .autoreply import is_auto_reply
from .mime import Entity, read_message
from .ses import read_notification
from .prose import looks_like_bounce, notice_text, read_prose, subject_reason
from .text import addresses, squash

# Report kinds: dsn, complaint, bounce (prose), auto_reply (RFC 3834), unreadable.
KINDS = ("dsn", "complaint", "bounce", "auto_reply", "unreadable")
_STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    address: str
    action: str  # failed, delayed, delivered, relayed, expanded (RFC 3464 §2.3.3); auto-replied
    status: str | None  # enhanced status code, e.g. 5.1.1
    diagnostic: str  # the remote server's reply as reported, or what the text said


@dataclass(frozen=True, slots=True)
class Report:
    kind: str
    recipients: list[RecipientStatus] = field(default_factory=list)
    feedback_type: str | None = None  # ARF: abuse, fraud, virus, not-spam, other
    original_recipients: list[str] = field(default_factory=list)
    original_message_id: str | None = None
    note: str = ""


def parse_report(raw: bytes) -> Report:
    try:
        return _read(read_message(raw))
    except Exception as exc:  # the reader is bounded and lenient; this is the last line of defence
        return Report("unreadable", note=f"{exc.__class__.__name__}: {exc}"[:300])


def _read(message: Entity) -> Report:
    original = _original(message)
    message_id = original.get("message-id") or None if original is not None else None
    complaint = read_complaint(message, original)
    if complaint is not None:
        feedback_type, recipients = complaint
        return Report("complaint", feedback_type=feedback_type, original_recipients=recipients,
                      original_message_id=message_id)
    notification = _ses(message)
    if notification is not None:
        return notification
    recipients = _from_status_fields(message)
    if recipients:
        return Report("dsn", recipients, original_message_id=message_id)
    if is_auto_reply(message) and not looks_like_bounce(message):
        return Report("auto_reply", [_auto_reply(message)], original_message_id=message_id)
    if not looks_like_bounce(message):
        return Report("unreadable", note="neither a report nor a bounce")
    found = [RecipientStatus(*r) for r in read_prose(message, original)]
    if not found:
        return Report("unreadable", note="a bounce without a recipient Postbote could find")
    return Report("bounce", found, original_message_id=message_id)


def _original(message: Entity) -> Entity | None:
    """The returned message's headers (RFC 3462 §3: the third part of a report)."""
    for part in message.walk():
        if part.content_type in ("message/rfc822", "message/global", "text/rfc822-headers") and part.parts:
            return part.parts[0]
    return None


def _from_status_fields(message: Entity) -> list[RecipientStatus]:
    texts = [p.text() for p in message.walk() if p.content_type in _STATUS_TYPES]
    if not texts:  # fields in a text/plain part or in the body itself: a report in the wrong type
        texts = [t for t in (p.text() for p in message.walk() if p.content_type.startswith("text/")) if dsn.has_fields(t)]
    recipients = []
    for text in texts:
        for block in dsn.blocks(text.replace("\r", "")):
            status = dsn.status_of(block)
            address = block.address()
            if address is None:
                continue
            action = dsn.action_of(block, status)
            if status is None and action in ("failed", "delayed"):  # RFC 3464 §2.3.4 makes Status required
                status = "5.0.0" if action == "failed" else "4.0.0"
            recipients.append(RecipientStatus(address, action, status, dsn.diagnostic_of(block)))
    if recipients and not any(r.diagnostic for r in recipients) and len(recipients) == 1:
        # Some MTAs leave Diagnostic-Code out and say it in the human-readable part only.
        r = recipients[0]
        notice = f"{notice_text(message)}\n{subject_reason(message)}"
        recipients = [RecipientStatus(r.address, r.action, r.status, squash(notice, 600))]
    return recipients


def _ses(message: Entity) -> Report | None:
    if message.content_type != "text/plain" or "amazonaws.com" not in message.get("from").lower():
        return None
    found = read_notification(message.text())
    if found is None:
        return None
    kind, recipients, feedback_type = found
    if kind == "complaint":
        return Report("complaint", feedback_type=feedback_type, original_recipients=[r[0] for r in recipients])
    return Report(kind, [RecipientStatus(*r) for r in recipients if "@" in r[0]])


def _auto_reply(message: Entity) -> RecipientStatus:
    sender = (addresses(message.get("from"), limit=1) or [""])[0]
    return RecipientStatus(sender, "auto-replied", None, squash(message.get("subject"), 300))
