"""Held mail: why a message is held, what releases it, and the ways out — release (the sender is
chosen again at that moment), cancel, release by itself once the sender domain is verified
(``RELEASE_HELD_ON_VERIFY``), and expiry once ``MAX_LIFETIME`` has run out.

A held message was stored with the sender it asked for, unsigned: it was never meant to leave in
that form. Releasing it rewrites From and Reply-To as the sender choice says now and DKIM-signs it
then, so mail released after verification goes out in the tenant's own, signed name, and mail
released by hand before that goes out from the platform's default sender. Every move is one
transaction that applies only to recipients still ``held`` — two releases, or a release racing an
expiry, move each recipient once."""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser

from sqlalchemy import Engine, insert, select, update

from .compose import Mailbox, parse_mailbox
from .compose import mime
from .db.schema import deliveries, events, messages, recipient_copies, tenants, utcnow
from .domains import choose_sender, sign
from .errors import ConflictError, NotFoundError
from .settings import Settings
from .vocab import PENDING_STATES, DeliveryState, EventKind, SenderPolicy

# Header fields that the sender choice decides; everything else of the stored message stays as it was.
_REWRITTEN = {b"from", b"reply-to", b"dkim-signature"}


@dataclass(frozen=True, slots=True)
class Released:
    id: str
    released: list[str]  # recipients moved from held to queued
    sender: str  # the From used now
    note: str | None  # why it differs from the one asked for


def _message(conn, message_id: str, tenant_id: int | None):
    query = select(messages, tenants.c.display_name).join(tenants, tenants.c.id == messages.c.tenant_id) \
        .where(messages.c.id == message_id)
    if tenant_id is not None:
        query = query.where(messages.c.tenant_id == tenant_id)
    row = conn.execute(query).first()
    if row is None:
        raise NotFoundError(f"No message {message_id!r}.", code="message_not_found",
                            hint="Use the id printed by 'postbote send' or returned by POST /v1/messages.")
    return row


def _held(conn, message_id: str) -> list:
    return conn.execute(select(deliveries.c.id, deliveries.c.recipient)
                        .where(deliveries.c.message_id == message_id, deliveries.c.state == DeliveryState.HELD.value)
                        .order_by(deliveries.c.id)).all()


def _not_held(message_id: str) -> ConflictError:
    return ConflictError(f"Message {message_id} has no held recipient.", code="message_not_held",
                         hint="Only held mail is released; see 'postbote status ID' for where each recipient stands.")


def _fields(head: bytes) -> list[bytes]:
    """The header block as whole fields, each with its folded continuation lines."""
    fields: list[bytes] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        elif line:
            fields.append(line)
    return fields


def _reply_to(head: bytes) -> Mailbox | None:
    parsed = BytesHeaderParser(policy=email.policy.default).parsebytes(head + b"\r\n\r\n")
    field = parsed["reply-to"]
    if field is None or not field.addresses:
        return None
    first = field.addresses[0]
    return Mailbox(first.addr_spec, first.display_name or "")


def _readdressed(raw: bytes, sender: Mailbox, reply_to: Mailbox | None) -> bytes:
    head, _, body = raw.partition(b"\r\n\r\n")
    kept = [f for f in _fields(head) if f.split(b":", 1)[0].strip().lower() not in _REWRITTEN]
    new = mime.address_header("From", [mime.address(sender.display_name, sender.address)])
    if reply_to is not None:
        new += mime.address_header("Reply-To", [mime.address(reply_to.display_name, reply_to.address)])
    return new.encode("ascii") + b"\r\n".join(kept) + b"\r\n\r\n" + body


def release(engine: Engine, settings: Settings, message_id: str, *, tenant_id: int | None = None,
            by: str = "hand", vault=None) -> Released:
    """Send a held message now, from the sender chosen at this moment: the tenant's own domain when
    it is verified, else the platform's default sender (a release by hand is the tenant saying
    "send it anyway"; it never holds again)."""
    from .sending import vault_for  # sending imports this module's neighbours; keep the cycle out

    vault = vault or vault_for(settings.SECRET_KEY)
    with engine.connect() as conn:
        row = _message(conn, message_id, tenant_id)
        if not _held(conn, message_id):
            raise _not_held(message_id)
    requested = parse_mailbox(row.requested_from or row.from_header, field="sender")
    head = row.raw.partition(b"\r\n\r\n")[0]
    reply_to = _reply_to(head)
    decision = choose_sender(engine, settings, tenant_id=row.tenant_id, tenant_name=row.display_name,
                             policy=SenderPolicy.FALLBACK, requested=requested, reply_to=reply_to)
    key = vault.open(decision.key.sealed)

    def redone(stored: bytes) -> bytes:
        readdressed = _readdressed(stored, decision.sender, decision.reply_to)
        return sign(readdressed, domain=decision.dkim_domain, selector=decision.key.selector, key=key)

    raw = redone(row.raw)
    with engine.connect() as conn:
        copies = {c.recipient: redone(bytes(c.raw)) for c in conn.execute(
            select(recipient_copies).where(recipient_copies.c.message_id == message_id))}
    now = utcnow()
    sender_text = str(decision.sender.header())
    with engine.begin() as conn:
        moved = _held(conn, message_id)
        if not moved:
            raise _not_held(message_id)
        conn.execute(update(messages).where(messages.c.id == message_id).values(
            raw=raw, size=len(raw), from_header=sender_text, mail_from=f"bounces+{message_id}@{decision.envelope_host}",
            sender_note=decision.note, dkim_domain=decision.dkim_domain, dkim_selector=decision.key.selector))
        for recipient, copy in copies.items():
            conn.execute(update(recipient_copies).where(recipient_copies.c.message_id == message_id,
                                                        recipient_copies.c.recipient == recipient).values(raw=copy))
        conn.execute(update(deliveries).where(deliveries.c.message_id == message_id,
                                              deliveries.c.state == DeliveryState.HELD.value)
                     .values(state=DeliveryState.QUEUED.value, next_attempt_at=now, updated_at=now))
        conn.execute(insert(events).values(message_id=message_id, delivery_id=None, kind=EventKind.RELEASED.value,
                                           at=now, data={"by": by, "sender": sender_text, "note": decision.note,
                                                         "recipients": [d.recipient for d in moved]}))
    return Released(message_id, [d.recipient for d in moved], sender_text, decision.note)


def cancel(engine: Engine, message_id: str, *, tenant_id: int | None = None) -> list[str]:
    """Never send what has not gone yet: held, queued and deferred recipients become ``cancelled``.
    A recipient a worker is delivering at this moment (leased) is left to finish."""
    now = utcnow()
    waiting = [DeliveryState.HELD.value, *(s.value for s in PENDING_STATES)]
    with engine.begin() as conn:
        _message(conn, message_id, tenant_id)
        rows = conn.execute(select(deliveries.c.id, deliveries.c.recipient)
                            .where(deliveries.c.message_id == message_id, deliveries.c.state.in_(waiting),
                                   deliveries.c.lease_owner.is_(None))).all()
        if not rows:
            raise ConflictError(f"Message {message_id} has nothing left to cancel.", code="message_not_cancellable",
                                hint="Its recipients were delivered, bounced or expired, or are being delivered now.")
        conn.execute(update(deliveries).where(deliveries.c.id.in_([r.id for r in rows]),
                                              deliveries.c.state.in_(waiting), deliveries.c.lease_owner.is_(None))
                     .values(state=DeliveryState.CANCELLED.value, updated_at=now, finished_at=now,
                             last_reply="cancelled by the tenant"))
        conn.execute(insert(events).values(message_id=message_id, delivery_id=None, kind=EventKind.CANCELLED.value,
                                           at=now, data={"recipients": [r.recipient for r in rows]}))
    return [r.recipient for r in rows]


def held_messages(engine: Engine, *, domain: str | None = None, tenant_id: int | None = None) -> list[str]:
    """Ids of messages with a held recipient; ``domain``: asked to be sent from that domain."""
    query = select(messages.c.id, messages.c.requested_from, messages.c.tenant_id).where(
        messages.c.id.in_(select(deliveries.c.message_id).where(deliveries.c.state == DeliveryState.HELD.value)))
    if tenant_id is not None:
        query = query.where(messages.c.tenant_id == tenant_id)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(messages.c.id)).all()
    if domain is None:
        return [r.id for r in rows]
    wanted = domain.lower()
    return [r.id for r in rows if (r.requested_from or "").rpartition("@")[2].rstrip(">").strip().lower() == wanted]


def release_for_domain(engine: Engine, settings: Settings, domain: str, tenant_id: int) -> list[str]:
    """The domain has just become verified: release the tenant's mail held for it (when
    ``RELEASE_HELD_ON_VERIFY``). A plain function: whoever records a domain's new state calls it."""
    if not settings.RELEASE_HELD_ON_VERIFY:
        return []
    released = []
    for message_id in held_messages(engine, domain=domain, tenant_id=tenant_id):
        try:
            release(engine, settings, message_id, tenant_id=tenant_id, by="domain_verified")
        except ConflictError:  # released or expired meanwhile
            continue
        released.append(message_id)
    return released


def expire_held(engine: Engine, *, now: datetime | None = None) -> int:
    """Held recipients of messages older than MAX_LIFETIME expire, as mail retried that long would.
    Returns how many. A plain function: the periodic loop of ``serve`` (or a worker) calls it."""
    now = now or utcnow()
    with engine.begin() as conn:
        rows = conn.execute(select(deliveries.c.id, deliveries.c.message_id)
                            .join(messages, messages.c.id == deliveries.c.message_id)
                            .where(deliveries.c.state == DeliveryState.HELD.value, messages.c.expires_at <= now)).all()
        if not rows:
            return 0
        conn.execute(update(deliveries).where(deliveries.c.id.in_([r.id for r in rows]),
                                              deliveries.c.state == DeliveryState.HELD.value)
                     .values(state=DeliveryState.EXPIRED.value, updated_at=now, finished_at=now,
                             last_reply="held until MAX_LIFETIME ran out; never sent"))
        conn.execute(insert(events), [{"message_id": r.message_id, "delivery_id": r.id, "kind": EventKind.EXPIRED.value,
                                       "at": now, "data": {"reason": "held until MAX_LIFETIME ran out"}} for r in rows])
    return len(rows)


def hold_story(settings: Settings, message_id: str, sender_note: str | None, expires_at: datetime) -> dict:
    """Why a message is held and what releases it, for every face (status, explain, the API)."""
    automatic = settings.RELEASE_HELD_ON_VERIFY
    return {
        "reason": sender_note or "held by the tenant's policy",
        "released_by": [*(["domain_verified"] if automatic else []), "release", "cancel", "expiry"],
        "release_command": f"postbote message release {message_id}",
        "cancel_command": f"postbote message cancel {message_id}",
        "expires_at": expires_at,
    }


__all__ = ["Released", "release", "cancel", "held_messages", "release_for_domain", "expire_held", "hold_story"]

