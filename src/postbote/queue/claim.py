"""Claiming due deliveries with a lease: one conditional UPDATE … RETURNING.

A delivery is claimable when it is pending (queued or deferred), due, and nobody holds a live
lease on it. The claim sets the lease; a worker that dies simply lets its leases run out, and the
next claim takes those deliveries over. On PostgreSQL, ``FOR UPDATE SKIP LOCKED`` lets many
workers claim at once without waiting on each other; SQLite has one writer at a time, so the
plain sub-select is already exclusive. This is the one place where the dialects differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, exists, or_, select, tuple_, update

from ..db.schema import deliveries, messages, recipient_copies, tenants
from ..vocab import PENDING_STATES


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    id: int
    message_id: str
    recipient: str
    domain: str
    attempts: int
    source_ip: str | None
    lease_expires_at: datetime
    last_category: str | None = None  # the category of the previous attempt's reply


def not_suspended():
    """A delivery whose tenant is not suspended: a suspended tenant's mail waits, unclaimed and
    not counted as work to wait for, until the tenant is resumed."""
    return ~exists().where(messages.c.id == deliveries.c.message_id, tenants.c.id == messages.c.tenant_id,
                           tenants.c.suspended_at.is_not(None))


def claim_due(
    engine: Engine, *, owner: str, limit: int, lease_seconds: float, now: datetime
) -> list[ClaimedDelivery]:
    lease_until = now + timedelta(seconds=lease_seconds)
    due = (
        select(deliveries.c.id)
        .where(
            deliveries.c.state.in_([s.value for s in PENDING_STATES]),
            deliveries.c.next_attempt_at <= now,
            or_(deliveries.c.lease_expires_at.is_(None), deliveries.c.lease_expires_at < now),
            not_suspended(),
        )
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
    )
    if engine.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    statement = (
        update(deliveries)
        .where(deliveries.c.id.in_(due.scalar_subquery()))
        .values(lease_owner=owner, lease_expires_at=lease_until)
        .returning(
            deliveries.c.id,
            deliveries.c.message_id,
            deliveries.c.recipient,
            deliveries.c.domain,
            deliveries.c.attempts,
            deliveries.c.source_ip,
            deliveries.c.category,
        )
    )
    with engine.begin() as conn:
        rows = conn.execute(statement).all()
    return [ClaimedDelivery(*row[:6], lease_expires_at=lease_until, last_category=row[6]) for row in rows]


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    id: str
    mail_from: str
    raw: bytes
    created_at: datetime
    expires_at: datetime


def load_messages(engine: Engine, ids: set[str]) -> dict[str, QueuedMessage]:
    """The messages of the claimed deliveries, by id."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(messages.c.id, messages.c.mail_from, messages.c.raw, messages.c.created_at,
                   messages.c.expires_at)
            .where(messages.c.id.in_(ids))
        ).all()
    return {
        row.id: QueuedMessage(row.id, row.mail_from, bytes(row.raw), row.created_at, row.expires_at)
        for row in rows
    }


def release(engine: Engine, *, owner: str, ids: list[int]) -> None:
    """Give back leases that were claimed but will not be attempted (a worker shutting down)."""
    if not ids:
        return
    with engine.begin() as conn:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(ids), deliveries.c.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
        )


def renew_leases(engine: Engine, *, owner: str, ids: list[int], until: datetime) -> int:
    """Extend the leases this worker still holds on ``ids`` (deliveries in a live session), so a
    slow receiver does not let another worker take them over and send them a second time."""
    if not ids:
        return 0
    renewed = 0
    with engine.begin() as conn:
        for first in range(0, len(ids), 1000):
            renewed += conn.execute(
                update(deliveries)
                .where(deliveries.c.id.in_(ids[first:first + 1000]), deliveries.c.lease_owner == owner)
                .values(lease_expires_at=until)
            ).rowcount
    return renewed


def load_copies(engine: Engine, claimed: list[ClaimedDelivery]) -> dict[tuple[str, str], bytes]:
    """The recipients' own copies among the claimed deliveries, by (message id, recipient); a
    delivery without one gets the message's shared bytes."""
    if not claimed:
        return {}
    wanted = list({(d.message_id, d.recipient) for d in claimed})
    found: dict[tuple[str, str], bytes] = {}
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            pairs = wanted[start:start + 500]
            for row in conn.execute(select(recipient_copies).where(
                    tuple_(recipient_copies.c.message_id, recipient_copies.c.recipient).in_(pairs))):
                found[(row.message_id, row.recipient)] = bytes(row.raw)
    return found
