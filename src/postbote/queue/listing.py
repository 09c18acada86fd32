"""Finding messages: a tenant's messages newest first, filtered by recipient and state, one page
at a time. Message ids begin with their time in milliseconds, so the id alone orders them and the
last id of a page is the cursor of the next one: a page never repeats or skips a message, even
while new mail arrives."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Engine, exists, select

from ..db.schema import deliveries, messages, tenants
from ..errors import InputError
from ..vocab import DeliveryState

MAX_PAGE = 200
_CURSOR = re.compile(r"^[0-9a-f]{28}$")


@dataclass(frozen=True, slots=True)
class MessageSummary:
    id: str
    tenant: str
    subject: str
    sender: str
    created_at: object
    recipients: list[tuple[str, str]]  # (address, state)


@dataclass(frozen=True, slots=True)
class MessagePage:
    messages: list[MessageSummary]
    next_cursor: str | None  # None: this was the last page


def _check(state: str | None, limit: int, cursor: str | None, recipient: str | None) -> None:
    if state is not None and state not in {s.value for s in DeliveryState}:
        raise InputError(f"There is no state {state!r}.", code="state_invalid",
                         hint="Use one of: " + ", ".join(s.value for s in DeliveryState) + ".")
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"A page holds 1 to {MAX_PAGE} messages, not {limit}.", code="limit_invalid",
                         hint=f"Give a limit between 1 and {MAX_PAGE}; follow next_cursor for more.")
    if cursor is not None and not _CURSOR.match(cursor):
        raise InputError("The cursor is not one Postbote gave out.", code="cursor_invalid",
                         hint="Pass next_cursor of the previous page unchanged, or leave it out for the first page.")
    if recipient is not None and len(recipient) > 320:
        raise InputError("The recipient searched for is longer than an address can be.", code="search_invalid",
                         hint="Give an address or a part of one (at most 320 characters).")


def list_messages(engine: Engine, *, tenant_id: int | None = None, recipient: str | None = None,
                  state: str | None = None, limit: int = 50, cursor: str | None = None) -> MessagePage:
    """Messages newest first. ``recipient``: part of a recipient's address, any case; ``state``:
    only messages with a recipient in that state; ``tenant_id`` None: every tenant's (the CLI)."""
    recipient = recipient.strip().lower() or None if recipient is not None else None
    _check(state, limit, cursor, recipient)
    query = (select(messages.c.id, messages.c.subject, messages.c.from_header, messages.c.created_at,
                    tenants.c.name.label("tenant"))
             .join(tenants, tenants.c.id == messages.c.tenant_id)
             .order_by(messages.c.id.desc()).limit(limit + 1))
    if tenant_id is not None:
        query = query.where(messages.c.tenant_id == tenant_id)
    if cursor is not None:
        query = query.where(messages.c.id < cursor)
    if recipient is not None or state is not None:
        match = deliveries.c.message_id == messages.c.id
        if recipient is not None:
            escaped = recipient.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            match = match & deliveries.c.recipient.ilike(f"%{escaped}%", escape="\\")
        if state is not None:
            match = match & (deliveries.c.state == state)
        query = query.where(exists().where(match))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        page, more = rows[:limit], len(rows) > limit
        per_message: dict[str, list[tuple[str, str]]] = {row.id: [] for row in page}
        if per_message:
            for d in conn.execute(select(deliveries.c.message_id, deliveries.c.recipient, deliveries.c.state)
                                  .where(deliveries.c.message_id.in_(list(per_message)))
                                  .order_by(deliveries.c.id)):
                per_message[d.message_id].append((d.recipient, d.state))
    summaries = [MessageSummary(r.id, r.tenant, r.subject, r.from_header, r.created_at, per_message[r.id])
                 for r in page]
    return MessagePage(summaries, page[-1].id if more and page else None)
