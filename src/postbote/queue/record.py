"""Writing outcomes back: each attempt is stored with its reply and transcript, each delivery
moves to its new state, and every state change becomes an event — many at once, in one
transaction. An update only applies while the writer still holds the lease: a worker whose lease
ran out (and whose deliveries another worker took over) cannot overwrite the newer state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, bindparam, insert, select, update

from ..db.schema import attempts, deliveries, events, messages
from ..db.suppress import suppress_in
from ..vocab import DeliveryState, EventKind, SuppressionReason


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    started_at: datetime
    duration_ms: int
    outcome: str
    reply_code: int | None
    enhanced_code: str | None
    reply_text: str
    category: str | None  # None when delivered
    provider: str | None
    rule: str | None
    mx_host: str | None
    mx_ip: str | None
    source_ip: str | None
    tls: bool
    connection_reused: bool
    transcript: str


@dataclass(frozen=True, slots=True)
class DeliveryUpdate:
    delivery_id: int
    message_id: str
    state: DeliveryState
    next_attempt_at: datetime
    source_ip: str | None
    attempt: AttemptRecord  # also for attempts that never reached a server (null MX, DNS)
    reason: str  # one line for the event and the delivery: the deciding reply
    at: datetime
    suppress: bool = False  # the address is dead: add it to the tenant's suppression list
    suppress_for: float | None = None  # seconds; None: until removed by hand
    recipient: str = ""  # for the log line of the outcome


_EVENT_OF = {
    DeliveryState.DELIVERED: EventKind.DELIVERED,
    DeliveryState.DEFERRED: EventKind.DEFERRED,
    DeliveryState.BOUNCED: EventKind.BOUNCED,
    DeliveryState.EXPIRED: EventKind.EXPIRED,
}

_apply = (
    update(deliveries)
    .where(
        and_(
            deliveries.c.id == bindparam("b_id"),
            deliveries.c.lease_owner == bindparam("b_owner"),
        )
    )
    .values(
        state=bindparam("b_state"),
        attempts=deliveries.c.attempts + 1,
        next_attempt_at=bindparam("b_next"),
        source_ip=bindparam("b_source_ip"),
        last_code=bindparam("b_code"),
        last_reply=bindparam("b_reply"),
        category=bindparam("b_category"),
        provider=bindparam("b_provider"),
        lease_owner=None,
        lease_expires_at=None,
        updated_at=bindparam("b_at"),
        finished_at=bindparam("b_finished"),
    )
)


def record_outcomes(engine: Engine, owner: str, updates: list[DeliveryUpdate]) -> int:
    """Apply the updates still covered by this worker's lease; returns how many applied."""
    if not updates:
        return 0
    with engine.begin() as conn:
        held = {
            row.id
            for row in conn.execute(
                select(deliveries.c.id).where(
                    deliveries.c.id.in_([u.delivery_id for u in updates]),
                    deliveries.c.lease_owner == owner,
                )
            )
        }
        live = [u for u in updates if u.delivery_id in held]
        if not live:
            return 0
        conn.execute(_apply, [_delivery_params(owner, u) for u in live])
        conn.execute(insert(attempts), [_attempt_row(u) for u in live])
        conn.execute(insert(events), [_event_row(u) for u in live])
        _suppress(conn, [u for u in live if u.suppress])
    return len(live)


def _suppress(conn, updates: list[DeliveryUpdate]) -> None:
    if not updates:
        return
    rows = conn.execute(
        select(deliveries.c.id, deliveries.c.recipient, messages.c.tenant_id)
        .join(messages, messages.c.id == deliveries.c.message_id)
        .where(deliveries.c.id.in_([u.delivery_id for u in updates]))
    ).all()
    found = {row.id: row for row in rows}
    for u in updates:
        row = found[u.delivery_id]
        suppress_in(conn, row.tenant_id, row.recipient, SuppressionReason.HARD_BOUNCE,
                    source_message_id=u.message_id, detail=u.reason, lifetime=u.suppress_for)


def _delivery_params(owner: str, u: DeliveryUpdate) -> dict:
    final = u.state not in (DeliveryState.QUEUED, DeliveryState.DEFERRED)
    return {
        "b_id": u.delivery_id,
        "b_owner": owner,
        "b_state": u.state.value,
        "b_next": u.next_attempt_at,
        "b_source_ip": u.source_ip,
        "b_code": u.attempt.reply_code,
        "b_reply": u.reason,
        "b_category": u.attempt.category,
        "b_provider": u.attempt.provider,
        "b_at": u.at,
        "b_finished": u.at if final else None,
    }


def _attempt_row(u: DeliveryUpdate) -> dict:
    a = u.attempt
    return {
        "delivery_id": u.delivery_id,
        "started_at": a.started_at,
        "duration_ms": a.duration_ms,
        "outcome": a.outcome,
        "reply_code": a.reply_code,
        "enhanced_code": a.enhanced_code,
        "reply_text": a.reply_text,
        "category": a.category,
        "provider": a.provider,
        "rule": a.rule,
        "mx_host": a.mx_host,
        "mx_ip": a.mx_ip,
        "source_ip": a.source_ip,
        "tls": a.tls,
        "connection_reused": a.connection_reused,
        "transcript": a.transcript,
    }


def _event_row(u: DeliveryUpdate) -> dict:
    data: dict = {"reason": u.reason, "category": u.attempt.category}
    if u.state is DeliveryState.DEFERRED:
        data["next_attempt_at"] = u.next_attempt_at.isoformat()
    return {
        "message_id": u.message_id,
        "delivery_id": u.delivery_id,
        "kind": _EVENT_OF[u.state].value,
        "at": u.at,
        "data": data,
    }
