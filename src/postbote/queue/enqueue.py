"""Accepting a message: the message and one delivery per recipient, in one transaction. Once this
returns, the message is the queue's to deliver; nothing later may lose it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import Connection, Engine, insert

from ..compose import ComposedMessage
from ..db.schema import deliveries, events, messages, recipient_copies, utcnow
from ..vocab import DeliveryState, EventKind


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A composed (and signed) message with what the queue keeps beside it."""

    message: ComposedMessage
    mail_from: str  # the envelope sender (RFC 5321 MAIL FROM)
    requested_from: str | None = None  # the sender the caller asked for
    sender_note: str | None = None  # why the sender used differs from the one asked for
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    held: bool = False  # stored, but not to be sent
    copies: dict[str, bytes] | None = None  # recipient address → its own copy; None: all get message.raw

    @classmethod
    def plain(cls, message: ComposedMessage) -> "Outgoing":
        return cls(message, message.sender.address)


def enqueue(engine: Engine, tenant_id: int, item: Outgoing, *, lifetime: float) -> datetime:
    """Store one message and its deliveries; returns the acceptance time."""
    with engine.begin() as conn:
        return enqueue_in(conn, tenant_id, [item], lifetime=lifetime)


def enqueue_in(conn: Connection, tenant_id: int, batch: Iterable[Outgoing], *, lifetime: float) -> datetime:
    """Store many messages inside the caller's transaction (bulk acceptance, benchmarks)."""
    now = utcnow()
    expires = now + timedelta(seconds=lifetime)
    message_rows, delivery_rows, event_rows, copy_rows = [], [], [], []
    for item in batch:
        message = item.message
        message_rows.append(
            {
                "id": message.id,
                "tenant_id": tenant_id,
                "mail_from": item.mail_from,
                "from_header": str(message.sender.header()),
                "subject": message.subject,
                "message_id_header": message.message_id_header,
                "raw": message.raw,
                "size": len(message.raw),
                "created_at": now,
                "expires_at": expires,
                "requested_from": item.requested_from,
                "sender_note": item.sender_note,
                "dkim_domain": item.dkim_domain,
                "dkim_selector": item.dkim_selector,
            }
        )
        state = DeliveryState.HELD if item.held else DeliveryState.QUEUED
        for recipient in message.recipients:
            delivery_rows.append(
                {
                    "message_id": message.id,
                    "recipient": recipient.address,
                    "domain": recipient.domain,
                    "state": state.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "updated_at": now,
                }
            )
        copy_rows += [{"message_id": message.id, "recipient": address, "raw": raw}
                      for address, raw in (item.copies or {}).items()]
        event_rows.append(
            {
                "message_id": message.id,
                "delivery_id": None,
                "kind": EventKind.ACCEPTED.value,
                "at": now,
                "data": {"recipients": [r.address for r in message.recipients], "sender_note": item.sender_note,
                         **({"held": True} if item.held else {})},
            }
        )
    if message_rows:
        conn.execute(insert(messages), message_rows)
        conn.execute(insert(deliveries), delivery_rows)
        if copy_rows:
            conn.execute(insert(recipient_copies), copy_rows)
        conn.execute(insert(events), event_rows)
    return now
