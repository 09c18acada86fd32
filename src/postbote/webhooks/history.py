"""What a tenant sees of its calls: each with its state and every attempt (status, latency, the
start of the answer), the dead-letter list (calls parked after WEBHOOK_MAX_AGE), and replay."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import Engine, select, update

from ..db.schema import iso_utc, utcnow, webhook_attempts, webhook_calls, webhook_endpoints
from ..errors import InputError, NotFoundError
from ..settings import Settings
from .endpoints import disabled, not_found

STATES = ("pending", "delivered", "dead")


def _call_json(r, *, with_body: bool = False) -> dict:
    out = {"id": r.id, "event_id": r.event_id, "type": r.event_type, "state": r.state, "attempts": r.attempts,
           "next_attempt_at": iso_utc(r.next_attempt_at) if r.state == "pending" else None,
           "expires_at": iso_utc(r.expires_at), "last_status": r.last_status, "last_error": r.last_error,
           "created_at": iso_utc(r.created_at), "finished_at": iso_utc(r.finished_at)}
    if with_body:
        out["payload"] = json.loads(r.body)
    return out


def _owned(tenant_id: int, endpoint_id: str):
    return select(webhook_endpoints.c.id).where(webhook_endpoints.c.id == endpoint_id,
                                                webhook_endpoints.c.tenant_id == tenant_id)


def _require_endpoint(conn, tenant_id: int, endpoint_id: str, *, enabled: bool = False) -> None:
    row = conn.execute(select(webhook_endpoints.c.enabled).where(webhook_endpoints.c.id == endpoint_id,
                                                                 webhook_endpoints.c.tenant_id == tenant_id)).first()
    if row is None:
        raise not_found(endpoint_id)
    if enabled and not row.enabled:
        raise disabled(endpoint_id)


def check_state(state: str | None) -> str | None:
    if state is not None and state not in STATES:
        raise InputError(f"{state[:40]!r} is not a call state.", code="state_invalid",
                         hint="Use pending, delivered or dead (dead: the dead-letter list).")
    return state


def list_calls(engine: Engine, tenant_id: int, endpoint_id: str, *, state: str | None, before: int | None,
               limit: int) -> list[tuple[int, dict]]:
    """Calls to one endpoint, newest first."""
    query = select(webhook_calls).where(webhook_calls.c.endpoint_id == endpoint_id)
    if state is not None:
        query = query.where(webhook_calls.c.state == state)
    if before is not None:
        query = query.where(webhook_calls.c.id < before)
    with engine.connect() as conn:
        _require_endpoint(conn, tenant_id, endpoint_id)
        rows = conn.execute(query.order_by(webhook_calls.c.id.desc()).limit(limit)).all()
    return [(r.id, _call_json(r)) for r in rows]


def _call_row(conn, tenant_id: int, endpoint_id: str, call_id: int):
    row = conn.execute(select(webhook_calls).where(webhook_calls.c.id == call_id,
                                                   webhook_calls.c.endpoint_id.in_(_owned(tenant_id, endpoint_id)))).first()
    if row is None:
        raise NotFoundError(f"No call {call_id} to webhook endpoint {endpoint_id[:40]!r}.", code="webhook_call_not_found",
                            hint="List the endpoint's calls with GET /v1/webhooks/{id}/calls.")
    return row


def get_call(engine: Engine, tenant_id: int, endpoint_id: str, call_id: int) -> dict:
    """One call with its payload and every attempt, oldest first."""
    with engine.connect() as conn:
        row = _call_row(conn, tenant_id, endpoint_id, call_id)
        tried = conn.execute(select(webhook_attempts).where(webhook_attempts.c.call_id == call_id)
                             .order_by(webhook_attempts.c.id)).all()
    out = _call_json(row, with_body=True)
    out["attempt_log"] = [{"at": iso_utc(a.started_at), "duration_ms": a.duration_ms, "status": a.status,
                           "error": a.error, "response_excerpt": a.response_excerpt} for a in tried]
    return out


def replay(engine: Engine, settings: Settings, tenant_id: int, endpoint_id: str, call_id: int | None = None) -> int:
    """Send again: one call (in any state), or every dead call of the endpoint. Each gets a new
    WEBHOOK_MAX_AGE of retries and keeps its event id, so a receiver can still drop repeats."""
    now = utcnow()
    values = {"state": "pending", "next_attempt_at": now, "expires_at": now + timedelta(seconds=settings.webhook_max_age_seconds),
              "finished_at": None, "lease_owner": None, "lease_until": None}
    with engine.begin() as conn:
        _require_endpoint(conn, tenant_id, endpoint_id, enabled=True)
        if call_id is not None:
            row = _call_row(conn, tenant_id, endpoint_id, call_id)
            if row.state == "pending":
                return 0  # already on its way
            where = webhook_calls.c.id == call_id
        else:
            where = (webhook_calls.c.endpoint_id == endpoint_id) & (webhook_calls.c.state == "dead")
        return conn.execute(update(webhook_calls).where(where).values(**values)).rowcount
