"""What a bounce or complaint changes. A DSN that says a delivered message failed after all
turns ``delivered`` into ``bounced`` with the DSN's status and diagnostic (the remote server
accepted, then gave up); a permanent unknown-recipient failure suppresses the address; a
complaint suppresses the address and is recorded. Everything leaves an event on the message.

A report changes only what concerns the recipients of the message its return path names: an
address that was no recipient of it is never suppressed nor bounced — the report is kept as a
``report_refused`` event instead, for operators to see (``postbote status``, the log)."""

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
                address = address.lower()
                if address not in rows:
                    _refused(conn, message_id, now, address, report, changes)
                    continue
                suppress_in(conn, tenant_id, address, SuppressionReason.COMPLAINT, source_message_id=message_id,
                            detail=f"complaint ({report.feedback_type or 'abuse'})")
                _event(conn, message_id, rows.get(address), EventKind.COMPLAINED, now,
                       {"recipient": address, "feedback_type": report.feedback_type})
                changes.append(f"{address}: complaint, suppressed")
            return changes
        for status in report.recipients:
            row = rows.get(status.address.lower())
            if row is None and report.kind != "auto_reply":  # an auto-reply changes nothing anyway
                _refused(conn, message_id, now, status.address, report, changes)
                continue
            permanent = status.action == "failed" and (status.status or "5").startswith("5")
            if not permanent:
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


def refused_reports(engine: Engine, *, since_seconds: float, limit: int = 1000) -> list[dict]:
    """Reports the receiver took but did not apply (about addresses that were no recipient of
    the message), newest first: for operators, who may be watching an attack."""
    from datetime import timedelta

    from ..db.schema import iso_utc, tenants

    query = (select(events.c.at, events.c.message_id, events.c.data, tenants.c.name)
             .join(messages, messages.c.id == events.c.message_id).join(tenants, tenants.c.id == messages.c.tenant_id)
             .where(events.c.kind == EventKind.REPORT_REFUSED.value, events.c.at >= utcnow() - timedelta(seconds=since_seconds))
             .order_by(events.c.id.desc()).limit(limit))
    with engine.connect() as conn:
        return [{"at": iso_utc(r.at), "message_id": r.message_id, "tenant": r.name, "recipient": r.data.get("recipient"),
                 "kind": r.data.get("kind"), "why": r.data.get("why")} for r in conn.execute(query)]


def _refused(conn, message_id: str, now, address: str, report: Report, changes: list[str]) -> None:
    _event(conn, message_id, None, EventKind.REPORT_REFUSED, now,
           {"recipient": address[:320], "kind": report.kind, "why": "not a recipient of this message"})
    log.warning("inbound %s: refused a %s about %r, which was no recipient of it", message_id, report.kind, address[:320])
    changes.append(f"{address[:320]}: refused, not a recipient")


def _event(conn, message_id: str, row, kind: EventKind, at, data: dict) -> None:
    conn.execute(insert(events).values(message_id=message_id, delivery_id=row.id if row is not None else None,
                                       kind=kind.value, at=at, data=data))
