"""Complaint reports: ARF (RFC 5965) and the non-standard ones that some mailbox providers send.

A standard report is ``multipart/report; report-type=feedback-report`` with a
``message/feedback-report`` part (Feedback-Type, Original-Rcpt-To, RFC 5965 §3.2) and the
original message or its headers. Hotmail's older complaints are a plain ``multipart/mixed`` from
a staff address whose attached original names the complaining recipient in
``X-HmXmrOriginalRecipient``; they are complaints of type ``abuse``."""

from __future__ import annotations

from .mime import Entity, decode_words, parse_headers
from .text import addresses

_HOTMAIL_FIELD = "x-hmxmroriginalrecipient"


def feedback_parts(message: Entity) -> list[Entity]:
    return [p for p in message.walk() if p.content_type == "message/feedback-report"]


def read_complaint(message: Entity, original: Entity | None) -> tuple[str, list[str]] | None:
    """(feedback type, complaining recipients), or None when the message is no complaint."""
    parts = feedback_parts(message)
    if parts or (message.params.get("report-type", "").lower() == "feedback-report"):
        return _standard(parts, message, original)
    if original is not None and original.get(_HOTMAIL_FIELD):
        return "abuse", addresses(" ".join(original.get_all(_HOTMAIL_FIELD)))
    subject = decode_words(message.get("subject")).lower()
    if "complaint about message" in subject and original is not None:
        return "abuse", addresses(original.get("to"))[:1]
    return None


def _standard(parts: list[Entity], message: Entity, original: Entity | None) -> tuple[str, list[str]]:
    feedback_type, recipients = "", []
    for part in parts:
        fields = parse_headers(part.text().replace("\r\n", "\n").strip("\n"))
        for name, value in fields:
            if name == "feedback-type" and not feedback_type:
                feedback_type = value.strip().lower().split(" ", 1)[0]
            elif name in ("original-rcpt-to", "removal-recipient"):
                recipients += [a for a in addresses(value) if a not in recipients]
    if not recipients and original is not None:
        recipients = addresses(original.get("to"))[:1]
    return feedback_type or "abuse", recipients
