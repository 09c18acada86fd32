"""Accepting a message: the message and one delivery per recipient, in one transaction. Once this
returns, the message is the queue's to deliver; nothing later may lose it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import Connection, Engine, insert

from ..compose import ComposedMessage
from ..db.schema import deliveries, events, messages, utcnow
from ..vocab import DeliveryState, EventKind


def enqueue(engine: Engine, tenant_id: int, message: ComposedMessage, *, lifetime: float) -> datetime:
    """Store one message and its deliveries; returns the acceptance time."""
    with engine.begin() as conn:
        return enqueue_in(conn, tenant_id, [message], lifetime=lifetime)


def enqueue_in(
    conn: Connection, tenant_id: int, batch: Iterable[ComposedMessage], *, lifetime: float
) -> datetime:
    """Store many messages inside the caller's transaction (bulk acceptance, benchmarks)."""
    now = utcnow()
    expires = now + timedelta(seconds=lifetime)
    message_rows, delivery_rows, event_rows = [], [], []
    for message in batch:
        message_rows.append(
            {
                "id": message.id,
                "tenant_id": tenant_id,
                "mail_from": message.sender.address,
                "from_header": str(message.sender.header()),
                "subject": message.subject,
                "message_id_header": message.message_id_header,
                "raw": message.raw,
                "size": len(message.raw),
                "created_at": now,
                "expires_at": expires,
            }
        )
        for recipient in message.recipients:
            delivery_rows.append(
                {
                    "message_id": message.id,
                    "recipient": recipient.address,
                    "domain": recipient.domain,
                    "state": DeliveryState.QUEUED.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "updated_at": now,
                }
            )
        event_rows.append(
            {
                "message_id": message.id,
                "delivery_id": None,
                "kind": EventKind.ACCEPTED.value,
                "at": now,
                "data": {"recipients": [r.address for r in message.recipients]},
            }
        )
    if message_rows:
        conn.execute(insert(messages), message_rows)
        conn.execute(insert(deliveries), delivery_rows)
        conn.execute(insert(events), event_rows)
    return now
