"""Reading the queue back: a message with each recipient's state and every attempt, and the
counts a worker needs to know whether anything is left to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, func, select

from ..db.schema import attempts, deliveries, events, messages
from ..errors import NotFoundError
from ..vocab import PENDING_STATES
from .claim import not_suspended


@dataclass(frozen=True, slots=True)
class AttemptView:
    started_at: datetime
    duration_ms: int
    outcome: str
    reply_code: int | None
    enhanced_code: str | None
    reply: str
    category: str | None
    provider: str | None
    mx_host: str | None
    mx_ip: str | None
    source_ip: str | None
    tls: bool
    transcript: str


@dataclass(frozen=True, slots=True)
class ReportView:
    """A failure reported after the receiving server had answered 250 (a DSN, a bounce)."""

    at: datetime
    source: str  # dsn, prose, ses … (the reader's kind of report)
    status: str | None  # the reported enhanced status code
    diagnostic: str  # the reported diagnostic (the remote server's reply, as quoted)
    category: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class RecipientView:
    address: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_reply: str | None
    category: str | None
    provider: str | None
    history: list[AttemptView]
    reports: list[ReportView] = field(default_factory=list)  # later failure reports, oldest first


@dataclass(frozen=True, slots=True)
class MessageView:
    id: str
    tenant_id: int
    sender: str
    requested_from: str | None
    sender_note: str | None
    dkim_domain: str | None
    dkim_selector: str | None
    subject: str
    message_id_header: str
    size: int
    created_at: datetime
    expires_at: datetime
    recipients: list[RecipientView]


def message_status(engine: Engine, message_id: str, *, tenant_id: int | None = None) -> MessageView:
    """The message and its recipients; a message of another tenant does not exist for the caller."""
    with engine.connect() as conn:
        query = select(messages).where(messages.c.id == message_id)
        if tenant_id is not None:
            query = query.where(messages.c.tenant_id == tenant_id)
        msg = conn.execute(query).first()
        if msg is None:
            raise NotFoundError(
                f"No message {message_id!r}.",
                hint="Use the id printed by 'postbote send' or returned by POST /v1/messages.",
                code="message_not_found",
            )
        rows = conn.execute(
            select(deliveries).where(deliveries.c.message_id == message_id).order_by(deliveries.c.id)
        ).all()
        history: dict[int, list[AttemptView]] = {row.id: [] for row in rows}
        for a in conn.execute(
            select(attempts)
            .where(attempts.c.delivery_id.in_(list(history)))
            .order_by(attempts.c.id)
        ):
            history[a.delivery_id].append(
                AttemptView(
                    started_at=a.started_at,
                    duration_ms=a.duration_ms,
                    outcome=a.outcome,
                    reply_code=a.reply_code,
                    enhanced_code=a.enhanced_code,
                    reply=a.reply_text,
                    category=a.category,
                    provider=a.provider,
                    mx_host=a.mx_host,
                    mx_ip=a.mx_ip,
                    source_ip=a.source_ip,
                    tls=a.tls,
                    transcript=a.transcript,
                )
            )
        reports: dict[int, list[ReportView]] = {row.id: [] for row in rows}
        for e in conn.execute(select(events).where(events.c.delivery_id.in_(list(reports)),
                                                   events.c.kind == "bounced").order_by(events.c.id)):
            data = e.data or {}
            if "source" in data:  # written by the bounce reader: reported after a 250
                reports[e.delivery_id].append(ReportView(
                    at=e.at, source=data["source"], status=data.get("status"),
                    diagnostic=data.get("diagnostic") or data.get("reason") or "", category=data.get("category"),
                    reason=data.get("reason") or ""))
    pending = {s.value for s in PENDING_STATES}
    return MessageView(
        id=msg.id,
        tenant_id=msg.tenant_id,
        sender=msg.from_header,
        requested_from=msg.requested_from,
        sender_note=msg.sender_note,
        dkim_domain=msg.dkim_domain,
        dkim_selector=msg.dkim_selector,
        subject=msg.subject,
        message_id_header=msg.message_id_header,
        size=msg.size,
        created_at=msg.created_at,
        expires_at=msg.expires_at,
        recipients=[
            RecipientView(
                address=row.recipient,
                state=row.state,
                attempts=row.attempts,
                next_attempt_at=row.next_attempt_at if row.state in pending else None,
                last_reply=row.last_reply,
                category=row.category,
                provider=row.provider,
                history=history[row.id],
                reports=reports[row.id],
            )
            for row in rows
        ],
    )


def pending_count(engine: Engine) -> int:
    """Deliveries still queued or deferred, leased or not; not those of suspended tenants."""
    with engine.connect() as conn:
        return conn.execute(
            select(func.count())
            .select_from(deliveries)
            .where(deliveries.c.state.in_([s.value for s in PENDING_STATES]), not_suspended())
        ).scalar_one()


def next_due_at(engine: Engine) -> datetime | None:
    with engine.connect() as conn:
        return conn.execute(
            select(func.min(deliveries.c.next_attempt_at)).where(
                deliveries.c.state.in_([s.value for s in PENDING_STATES]), not_suspended()
            )
        ).scalar_one()
