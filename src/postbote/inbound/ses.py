"""Amazon SES event notifications (delivered by SNS as e-mail): a JSON object, not a report.
``notificationType`` is Bounce, Complaint or Delivery; bounced recipients carry ``status`` and
``diagnosticCode`` (the receiving server's reply), which is all a reader needs."""

from __future__ import annotations

import json

from .text import squash, status_in

MAX_JSON = 256_000


def read_notification(text: str) -> tuple[str, list[tuple[str, str, str | None, str]], str | None] | None:
    """(kind, [(address, action, status, diagnostic)], feedback type) or None when no notification."""
    start = text.find("{")
    if start < 0 or '"notificationType"' not in text[start:start + MAX_JSON]:
        return None
    end = text.rfind("}", start, start + MAX_JSON)
    data = None
    for candidate in (text[start:end + 1], text[start:end + 1].replace("\n ", "")):  # as sent, or folded
        try:
            data = json.loads(candidate)
            break
        except (ValueError, RecursionError):
            continue
    if not isinstance(data, dict):
        return None
    kind = str(data.get("notificationType", "")).lower()
    if kind == "bounce":
        bounce = data.get("bounce") or {}
        action = "delayed" if bounce.get("bounceType") == "Transient" else "failed"
        return "dsn", [_bounced(r, action) for r in bounce.get("bouncedRecipients") or [] if isinstance(r, dict)], None
    if kind == "complaint":
        complaint = data.get("complaint") or {}
        found = [str(r.get("emailAddress", "")).lower() for r in complaint.get("complainedRecipients") or []
                 if isinstance(r, dict)]
        return "complaint", [(a, "failed", None, "") for a in found], complaint.get("complaintFeedbackType") or "abuse"
    if kind == "delivery":
        delivery = data.get("delivery") or {}
        reply = squash(str(delivery.get("smtpResponse", "")))
        return "dsn", [(str(a).lower(), "delivered", status_in(reply) or "2.0.0", reply)
                       for a in delivery.get("recipients") or []], None
    return None


def _bounced(recipient: dict, action: str) -> tuple[str, str, str | None, str]:
    diagnostic = squash(str(recipient.get("diagnosticCode", "")))
    status = status_in(str(recipient.get("status", ""))) or status_in(diagnostic)
    return str(recipient.get("emailAddress", "")).lower(), action, status, diagnostic
