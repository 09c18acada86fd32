"""What a bounce or complaint changes. A DSN that says a delivered message failed after all
turns ``delivered`` into ``bounced`` with the DSN's status and diagnostic (the remote server
accepted, then gave up); a permanent unknown-recipient failure suppresses the address; a
complaint suppresses the address and is recorded. Everything leaves an event on the message."""

from __future__ import annotations

import logging

from sqlalchemy import Engine, insert, select, update

from ..db.schema import deliveries, events, messages, utcnow
from ..db.suppress import suppress_in
from ..vocab import DeliveryState, EventKind, SuppressionReason
from .meaning import classify_recipient
from .parse import Report

log = logging.getLogger("postbote.inbound")


def message_exists(engine: Engine, message_id: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(messages.c.id).where(messages.c.id == message_id)).first() is not None


def apply_report(engine: Engine, message_id: str, report: Report) -> list[str]:
    """Record the report against the message; returns a line per change, for the log."""
    now = utcnow()
    changes: list[str] = []
    with engine.begin() as conn:
        tenant_id = conn.execute(select(messages.c.tenant_id).where(messages.c.id == message_id)).scalar_one()
        rows = {r.recipient.lower(): r for r in conn.execute(select(deliveries).where(deliveries.c.message_id == message_id))}
        if report.kind == "complaint":
            for address in report.original_recipients or (list(rows) if len(rows) == 1 else []):
                suppress_in(conn, tenant_id, address, SuppressionReason.COMPLAINT, source_message_id=message_id,
                            detail=f"complaint ({report.feedback_type or 'abuse'})")
                _event(conn, message_id, rows.get(address), EventKind.COMPLAINED, now,
                       {"recipient": address, "feedback_type": report.feedback_type})
                changes.append(f"{address}: complaint, suppressed")
            return changes
        for status in report.recipients:
            row = rows.get(status.address)
            permanent = status.action == "failed" and (status.status or "5").startswith("5")
            if row is None or not permanent:
                _event(conn, message_id, row, EventKind.REPORT, now, {"recipient": status.address, "action": status.action,
                                                                      "status": status.status, "diagnostic": status.diagnostic})
                continue
            meaning = classify_recipient(status)
            text = f"{status.status or ''} {status.diagnostic}".strip() + f" (reported by {report.kind.upper()})"
            if row.state == DeliveryState.DELIVERED.value:
                conn.execute(update(deliveries).where(deliveries.c.id == row.id).values(
                    state=DeliveryState.BOUNCED.value, last_reply=text, category=meaning.category.value, updated_at=now,
                    finished_at=now))
            _event(conn, message_id, row, EventKind.BOUNCED, now, {"reason": text, "category": meaning.category.value,
                                                                   "source": report.kind, "was": row.state,
                                                                   "action": status.action, "status": status.status,
                                                                   "diagnostic": status.diagnostic[:4000]})
            if meaning.suppress:
                suppress_in(conn, tenant_id, status.address, SuppressionReason.HARD_BOUNCE, source_message_id=message_id,
                            detail=text)
            changes.append(f"{status.address}: {row.state} -> bounced ({status.status})")
        if report.kind == "unreadable":
            _event(conn, message_id, None, EventKind.REPORT, now, {"unreadable": report.note})
    return changes


def _event(conn, message_id: str, row, kind: EventKind, at, data: dict) -> None:
    conn.execute(insert(events).values(message_id=message_id, delivery_id=row.id if row is not None else None,
                                       kind=kind.value, at=at, data=data))
