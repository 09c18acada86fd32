"""Reading what comes back: delivery status notifications (RFC 3464 multipart/report), complaint
reports (ARF, RFC 5965), and — best effort — the many bounces that follow neither. Pure; a
message that cannot be read is a Report of kind ``unreadable``, never an exception."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from email.message import Message

_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_ADDRESS = re.compile(r"<?([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)>?")
_SMTP_REPLY = re.compile(r"\b([45]\d\d)[ -]((?:[45]\.\d{1,3}\.\d{1,3})?.*)")
_BOUNCE_SUBJECT = re.compile(r"undeliver|delivery (status|failure|has failed)|failure notice|returned mail|"
                             r"mail delivery failed|nicht zustellbar|unzustellbar|non remis", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    address: str
    action: str  # failed, delayed, delivered, relayed, expanded (RFC 3464 §2.3.3)
    status: str | None  # enhanced status code, e.g. 5.1.1
    diagnostic: str  # the remote server's reply as reported, or what the text said


@dataclass(frozen=True, slots=True)
class Report:
    kind: str  # dsn, complaint, bounce (non-standard), unreadable
    recipients: list[RecipientStatus] = field(default_factory=list)
    feedback_type: str | None = None  # ARF: abuse, fraud, virus, not-spam, other
    original_recipients: list[str] = field(default_factory=list)
    original_message_id: str | None = None
    note: str = ""


def parse_report(raw: bytes) -> Report:
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception as exc:  # the parser is lenient; this is the last line of defence
        return Report("unreadable", note=f"not a message: {exc.__class__.__name__}")
    try:
        if message.get_content_type() == "multipart/report":
            report_type = (message.get_param("report-type") or "").lower()
            if report_type == "delivery-status":
                return _dsn(message)
            if report_type == "feedback-report":
                return _arf(message)
        return _best_effort(message)
    except Exception as exc:
        return Report("unreadable", note=f"{exc.__class__.__name__}: {exc}"[:300])


def _parts(message: Message, content_type: str) -> list[Message]:
    return [p for p in message.walk() if p.get_content_type() == content_type]


def _dsn(message: Message) -> Report:
    recipients = []
    for part in _parts(message, "message/delivery-status"):
        blocks = part.get_payload()
        if isinstance(blocks, str):  # some senders put the fields in one text block
            blocks = [email.message_from_string(b) for b in re.split(r"\r?\n\r?\n", blocks) if b.strip()]
        for block in blocks[1:] if len(blocks) > 1 else blocks:  # the first block is per-message
            final = block.get("Final-Recipient") or block.get("Original-Recipient") or ""
            address = final.split(";", 1)[-1].strip().strip("<>")
            if "@" not in address:
                continue
            diagnostic = (block.get("Diagnostic-Code") or "").split(";", 1)[-1].strip()
            recipients.append(RecipientStatus(address.lower(), (block.get("Action") or "").strip().lower(),
                                              (block.get("Status") or "").strip() or None, " ".join(diagnostic.split())))
    if not recipients:
        return Report("unreadable", note="a delivery-status report without recipients")
    original = _original_headers(message)
    return Report("dsn", recipients, original_message_id=original.get("Message-ID"))


def _arf(message: Message) -> Report:
    feedback_type, recipients = None, []
    for part in _parts(message, "message/feedback-report"):
        fields = part.get_payload()
        block = fields[0] if isinstance(fields, list) and fields else email.message_from_string(str(fields))
        feedback_type = (block.get("Feedback-Type") or "").strip().lower() or None
        recipients += [a.strip().strip("<>").lower() for a in block.get_all("Original-Rcpt-To") or []]
    if feedback_type is None:
        return Report("unreadable", note="a feedback report without its feedback-report part")
    original = _original_headers(message)
    if not recipients and original.get("To"):
        recipients = [m.group(1).lower() for m in _ADDRESS.finditer(original["To"])]
    return Report("complaint", feedback_type=feedback_type, original_recipients=recipients,
                  original_message_id=original.get("Message-ID"))


def _original_headers(message: Message) -> Message:
    for part in message.walk():
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            return inner[0] if isinstance(inner, list) and inner else email.message_from_string(str(inner))
        if part.get_content_type() == "text/rfc822-headers":
            return email.message_from_string(part.get_payload(decode=True).decode("utf-8", "replace"))
    return Message()


def _best_effort(message: Message) -> Report:
    """Bounces in prose (qmail, old Exchange, hosting panels): an address, a code, a reason."""
    if not _BOUNCE_SUBJECT.search(message.get("Subject") or "") and not (message.get("From") or "").lower().startswith(
            ("mailer-daemon", "postmaster")):
        return Report("unreadable", note="neither a report nor a bounce")
    text = _text_of(message)
    recipients, seen, current = [], set(), None
    for line in text.splitlines():
        address = _ADDRESS.search(line)
        if address:
            current = address.group(1).lower()  # the reason may follow on the next lines
        reply = _SMTP_REPLY.search(line)
        status = _STATUS.search(line)
        if current and (reply or status) and current not in seen:
            seen.add(current)
            recipients.append(RecipientStatus(current, "failed", status.group(1) if status else None,
                                              " ".join((reply.group(0) if reply else line).split())))
    return Report("bounce" if recipients else "unreadable", recipients, note="" if recipients else "no recipient found")


def _text_of(message: Message) -> str:
    chunks = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True) or b""
            chunks.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return "\n".join(chunks)
