"""The JSON shapes every face prints: the CLI's ``--json`` and the REST API give the same keys,
snake_case, documented in the README. Changing a key is a breaking change."""

from __future__ import annotations

from .db.schema import iso_utc
from .queue import AttemptView, MessagePage, MessageView
from .sending import Accepted


def accepted_json(accepted: Accepted) -> dict:
    return {
        "id": accepted.id,
        "message_id_header": accepted.message_id_header,
        "recipients": [{"address": a, "state": s.value} for a, s in accepted.recipients],
        "sender": {"used": accepted.sender, "requested": accepted.requested_sender, "note": accepted.sender_note},
        "refused": [r.to_dict() for r in accepted.refused],
    }


def attempt_json(a: AttemptView) -> dict:
    return {
        "started_at": iso_utc(a.started_at),
        "duration_ms": a.duration_ms,
        "outcome": a.outcome,
        "reply_code": a.reply_code,
        "enhanced_code": a.enhanced_code,
        "reply": a.reply,
        "category": a.category,
        "provider": a.provider,
        "mx_host": a.mx_host,
        "mx_ip": a.mx_ip,
        "source_ip": a.source_ip,
        "tls": a.tls,
        "transcript": a.transcript.split("\n") if a.transcript else [],
    }


def message_json(view: MessageView, explanations: dict[str, dict] | None = None) -> dict:
    """``explanations``: recipient address → its explanation (explaining.message_story)."""
    return {
        "id": view.id,
        "from": view.sender,
        "sender": {"used": view.sender, "requested": view.requested_from, "note": view.sender_note,
                   "dkim_domain": view.dkim_domain, "dkim_selector": view.dkim_selector},
        "subject": view.subject,
        "message_id_header": view.message_id_header,
        "size": view.size,
        "created_at": iso_utc(view.created_at),
        "expires_at": iso_utc(view.expires_at),
        "hold": _hold(view),
        "recipients": [
            {
                "address": r.address,
                "state": r.state,
                "attempts": r.attempts,
                "next_attempt_at": iso_utc(r.next_attempt_at),
                "last_reply": r.last_reply,
                "category": r.category,
                "explanation": (explanations or {}).get(r.address),
                "history": [attempt_json(a) for a in r.history],
                "reports": [{"at": iso_utc(x.at), "source": x.source, "status": x.status, "diagnostic": x.diagnostic,
                             "category": x.category} for x in r.reports],
            }
            for r in view.recipients
        ],
    }


def _hold(view: MessageView) -> dict | None:
    """Why the message is held and the ways out, while a recipient is held; else null."""
    if not any(r.state == "held" for r in view.recipients):
        return None
    return {"reason": view.sender_note, "expires_at": iso_utc(view.expires_at),
            "release": f"POST /v1/messages/{view.id}/release", "cancel": f"POST /v1/messages/{view.id}/cancel"}


def message_page_json(page: MessagePage) -> dict:
    """``message list --json`` and ``GET /v1/messages``: newest first, ``next_cursor`` null on the last page."""
    return {
        "messages": [
            {"id": m.id, "tenant": m.tenant, "from": m.sender, "subject": m.subject, "created_at": iso_utc(m.created_at),
             "recipients": [{"address": a, "state": s} for a, s in m.recipients]}
            for m in page.messages
        ],
        "next_cursor": page.next_cursor,
    }
