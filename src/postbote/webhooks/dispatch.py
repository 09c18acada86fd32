"""From the logs to calls: every line of a log that an endpoint selects becomes one call to it.

The logs are the message timelines (``events``), the sender domains' history
(``domain_events``), the suppression lists (``suppressions``), the workflow events once answered
(``workflow_events``) and the delayed workflow jobs given up (``workflow_jobs``). Each keeps a ``dispatched``
mark: a line without one has not been turned into calls yet. Reading by that mark, not by a
position, means a line committed late (its transaction began before a later line's ended) is
found all the same. The calls are written and the lines marked in one transaction, so a crash
leaves either both or neither. Dispatchers side by side (serve and workers) never take the same
line: on PostgreSQL the lines read are locked (FOR UPDATE; a second dispatcher waits, then sees
them marked), on SQLite the transaction takes the write lock before it reads.

A call's body is fixed here, so every retry sends the same bytes under the same event id. An
endpoint hears of what happened after it was registered."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, Table, insert, select, text, update

from ..db.schema import (deliveries, domain_events, domains, events, iso_utc, messages, suppressions, utcnow,
                         webhook_calls, webhook_endpoints, workflow_events, workflow_jobs)
from .types import DOMAIN_TYPES, WebhookEvent, message_type, selects, suppression_type

BATCH = 500


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a log as a webhook tells it."""

    seq: int  # its id in its log
    tenant_id: int
    event_id: str
    event_type: str
    subject: str  # calls about one subject go to an endpoint in seq order
    at: datetime
    data: dict


def _message_lines(conn: Connection, limit: int) -> tuple[list[int], list[Line]]:
    query = (select(events.c.id, events.c.message_id, events.c.kind, events.c.at, events.c.data, messages.c.tenant_id,
                    deliveries.c.recipient)
             .join(messages, messages.c.id == events.c.message_id)
             .outerjoin(deliveries, deliveries.c.id == events.c.delivery_id)
             .where(events.c.dispatched.is_(None)).order_by(events.c.id).limit(limit).with_for_update(of=events))
    ids, lines = [], []
    for r in conn.execute(query):
        ids.append(r.id)
        raw = dict(r.data or {})
        kind = message_type(r.kind, raw)
        if kind is None:
            continue
        data = {**raw, "message_id": r.message_id, "kind": r.kind}
        if r.recipient is not None:
            data["recipient"] = r.recipient
        lines.append(Line(r.id, r.tenant_id, f"evt_m{r.id}", kind.value, f"message:{r.message_id}", r.at, data))
    return ids, lines


def _domain_lines(conn: Connection, limit: int) -> tuple[list[int], list[Line]]:
    query = (select(domain_events, domains.c.tenant_id, domains.c.name)
             .join(domains, domains.c.id == domain_events.c.domain_id)
             .where(domain_events.c.dispatched.is_(None)).order_by(domain_events.c.id).limit(limit)
             .with_for_update(of=domain_events))
    ids, lines = [], []
    for r in conn.execute(query):
        ids.append(r.id)
        kind = DOMAIN_TYPES.get(r.new_state or "") if r.kind == "state_changed" else None
        if kind is None:
            continue
        data = {"domain": r.name, "state": r.new_state, "previous_state": r.old_state, **(r.data or {})}
        lines.append(Line(r.id, r.tenant_id, f"evt_d{r.id}", kind.value, f"domain:{r.name}", r.at, data))
    return ids, lines


def _suppression_lines(conn: Connection, limit: int) -> tuple[list[int], list[Line]]:
    query = (select(suppressions).where(suppressions.c.dispatched.is_(None))
             .order_by(suppressions.c.id).limit(limit).with_for_update())
    ids, lines = [], []
    for r in conn.execute(query):
        ids.append(r.id)
        if r.removed_at is not None:  # taken off the list again before it was told: nothing to tell
            continue
        # The row is renewed in place; its creation time tells one entry from the next.
        stamp = int(r.created_at.timestamp() * 1_000_000)
        data = {"address": r.address, "reason": r.reason, "detail": r.detail, "source_message_id": r.source_message_id,
                "expires_at": iso_utc(r.expires_at)}
        lines.append(Line(stamp, r.tenant_id, f"evt_s{r.id}_{stamp}", suppression_type(r.reason).value,
                          f"address:{r.address}", r.created_at, data))
    return ids, lines


def _workflow_event_lines(conn: Connection, limit: int) -> tuple[list[int], list[Line]]:
    """Posted events once answered (one still being handled has no answer yet, and waits)."""
    query = (select(workflow_events.c.id, workflow_events.c.tenant_id, workflow_events.c.type,
                    workflow_events.c.idempotency_key, workflow_events.c.answer, workflow_events.c.created_at)
             .where(workflow_events.c.dispatched.is_(None), workflow_events.c.answer.is_not(None))
             .order_by(workflow_events.c.id).limit(limit).with_for_update())
    ids, lines = [], []
    for r in conn.execute(query):
        ids.append(r.id)
        answer = r.answer if isinstance(r.answer, dict) else {}
        data = {"event_id": r.id, "event_type": r.type, "idempotency_key": r.idempotency_key,
                "results": answer.get("results", [])}
        lines.append(Line(r.id, r.tenant_id, f"evt_w{r.id}", WebhookEvent.WORKFLOW_EVENT_HANDLED.value,
                          f"workflow_event:{r.id}", r.created_at, data))
    return ids, lines


def _workflow_job_lines(conn: Connection, limit: int) -> tuple[list[int], list[Line]]:
    query = (select(workflow_jobs).where(workflow_jobs.c.dispatched.is_(None), workflow_jobs.c.state == "failed")
             .order_by(workflow_jobs.c.id).limit(limit).with_for_update())
    ids, lines = [], []
    for r in conn.execute(query):
        ids.append(r.id)
        data = {"job_id": r.id, "event_id": r.event_id, "workflow_id": r.workflow_id, "version": r.version,
                "action": r.action, "recipient": r.recipient, "outcome": r.outcome}
        lines.append(Line(r.id, r.tenant_id, f"evt_j{r.id}", WebhookEvent.WORKFLOW_JOB_FAILED.value,
                          f"workflow_job:{r.id}", utcnow(), data))  # given up just now, at its last run
    return ids, lines


_SOURCES: tuple[tuple[Table, Callable[[Connection, int], tuple[list[int], list[Line]]]], ...] = (
    (events, _message_lines), (domain_events, _domain_lines), (suppressions, _suppression_lines),
    (workflow_events, _workflow_event_lines), (workflow_jobs, _workflow_job_lines))


def body(line: Line) -> str:
    return json.dumps({"id": line.event_id, "type": line.event_type, "timestamp": iso_utc(line.at), "data": line.data},
                      # ASCII: whatever a log line holds (a lone surrogate from a bounce) is valid in it
                      ensure_ascii=True, separators=(",", ":"), sort_keys=True, default=str)


def dispatch(engine: Engine, *, max_age_seconds: float, limit: int = BATCH) -> int:
    """Turn up to ``limit`` undispatched lines of each log into calls; returns the calls made."""
    made = 0
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":  # a write first: the write lock from here, so no other dispatcher reads these lines
            conn.execute(text("UPDATE webhook_calls SET id = id WHERE 0"))
        now = utcnow()
        for table, read in _SOURCES:
            ids, lines = read(conn, limit)
            if not ids:
                continue
            rows = list(_calls(conn, lines, now, timedelta(seconds=max_age_seconds)))
            if rows:
                conn.execute(insert(webhook_calls), rows)
                made += len(rows)
            conn.execute(update(table).where(table.c.id.in_(ids)).values(dispatched=now))
    return made


def _calls(conn: Connection, lines: list[Line], now: datetime, max_age: timedelta) -> Iterable[dict]:
    tenants = {line.tenant_id for line in lines}
    if not tenants:
        return
    listening: dict[int, list] = defaultdict(list)
    for ep in conn.execute(select(webhook_endpoints.c.id, webhook_endpoints.c.tenant_id, webhook_endpoints.c.events,
                                  webhook_endpoints.c.created_at)
                           .where(webhook_endpoints.c.tenant_id.in_(tenants), webhook_endpoints.c.enabled.is_(True))
                           .with_for_update(read=True)):  # not removed under us before the calls are in
        listening[ep.tenant_id].append(ep)
    for line in lines:
        text_ = None
        for ep in listening.get(line.tenant_id, ()):
            if line.at < ep.created_at or not selects(ep.events, line.event_type):
                continue
            text_ = text_ or body(line)
            yield {"endpoint_id": ep.id, "event_id": line.event_id, "event_type": line.event_type,
                   "subject": line.subject[:400], "seq": line.seq, "body": text_, "state": "pending", "attempts": 0,
                   "next_attempt_at": now, "expires_at": now + max_age, "created_at": now}
