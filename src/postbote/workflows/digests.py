"""Digests: an action that collects a recipient's events over a window ("all absence requests
awaiting your approval, once a day at 08:00") into one mail whose template sees the list.

The first event for an address opens a digest with its due time; later ones join it; when it
is due, ``send_due_digests`` (called by ``run_due``) renders one mail with ``events`` (each
event as templates see one) and ``count``, and sends it. Every collected event stays recorded
as part of that digest, and the digest names the message it became."""

from __future__ import annotations

import secrets
from datetime import datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..db.schema import iso_utc, utcnow, workflow_digest_events, workflow_digests
from ..errors import NotFoundError
from ..tenants import Tenant
from ..vocab import Outcome
from .action import Deps, Person, Result, deliver, render_for, resolve
from .definition import Digest
from .events import Event, load_event
from .once import digest_unit
from .store import Workflow, fallback_language, get_workflow, load_tenant
from .templates import TemplateError

MAX_EVENTS = 500  # per digest: later events open the next one


def digest_due(digest: Digest, first: datetime, person: Person) -> datetime:
    if digest.at is None:
        return first + timedelta(seconds=digest.window)
    try:
        zone = ZoneInfo((person.timezone or "UTC") if digest.timezone == "recipient" else digest.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = first.astimezone(zone)
    due = datetime.combine(local.date(), time(*digest.at), tzinfo=zone)
    if due <= local:
        due = datetime.combine(local.date() + timedelta(days=1), time(*digest.at), tzinfo=zone)
    return due.astimezone(timezone.utc)


def collect(deps: Deps, tenant: Tenant, workflow: Workflow, a: int, r: int, event: Event, person: Person,
            now: datetime) -> Result:
    """Add the event to the recipient's open digest, opening one if there is none."""
    digest = workflow.definition.actions[a].digest
    assert digest is not None and person.address is not None and event.id is not None
    key = f"{tenant.id}:{workflow.id}:{a}:{person.address.lower()}"
    earlier = _collected_before(deps.engine, tenant.id, workflow.id, a, person.address.lower(), event.id)
    if earlier is not None:  # the event is handled again after a crash: it is in its digest already
        return _collected(workflow, a, person, earlier.id, earlier.due_at)
    for _ in range(3):  # another request may open the same digest at the same moment
        with deps.engine.begin() as conn:
            row = conn.execute(select(workflow_digests.c.id, workflow_digests.c.due_at).where(
                workflow_digests.c.open_key == key)).first()
            if row is not None:
                count = conn.execute(select(workflow_digest_events.c.id).where(
                    workflow_digest_events.c.digest_id == row.id)).all()
                if len(count) < MAX_EVENTS:
                    conn.execute(insert(workflow_digest_events).values(digest_id=row.id, event_id=event.id,
                                                                       created_at=now))
                    return _collected(workflow, a, person, row.id, row.due_at)
                conn.execute(update(workflow_digests).where(workflow_digests.c.id == row.id).values(
                    open_key=f"{key}:full:{secrets.token_hex(4)}"))
        try:
            with deps.engine.begin() as conn:
                due = digest_due(digest, now, person)
                digest_id = conn.execute(insert(workflow_digests).values(
                    tenant_id=tenant.id, workflow_id=workflow.id, version=workflow.version, action=a, recipient=r,
                    address=person.address.lower(), open_key=key, due_at=due, state="open",
                    created_at=now)).inserted_primary_key[0]
                conn.execute(insert(workflow_digest_events).values(digest_id=digest_id, event_id=event.id,
                                                                   created_at=now))
            return _collected(workflow, a, person, digest_id, due)
        except IntegrityError:
            continue
    raise RuntimeError("could not open a digest")  # pragma: no cover - three races in a row


def _collected_before(engine: Engine, tenant_id: int, workflow_id: int, action: int, address: str, event_id: int):
    with engine.connect() as conn:
        return conn.execute(select(workflow_digests.c.id, workflow_digests.c.due_at).join(
            workflow_digest_events, workflow_digest_events.c.digest_id == workflow_digests.c.id).where(
            workflow_digests.c.tenant_id == tenant_id, workflow_digests.c.workflow_id == workflow_id,
            workflow_digests.c.action == action, workflow_digests.c.address == address,
            workflow_digest_events.c.event_id == event_id)).first()


def _collected(workflow: Workflow, a: int, person: Person, digest_id: int, due: datetime) -> Result:
    return Result(workflow.id, workflow.version, a, Outcome.COLLECTED, role=person.role, recipient=person.address,
                  due_at=iso_utc(due), reason=f"collected into digest {digest_id}, sent at {iso_utc(due)}")


LEASE = timedelta(minutes=5)  # a digest running longer than this is taken over: its loop is gone


def _claimable(now: datetime):
    return or_(workflow_digests.c.state == "open",
               and_(workflow_digests.c.state == "running",
                    or_(workflow_digests.c.lease_until.is_(None), workflow_digests.c.lease_until <= now)))


async def send_due_digests(deps: Deps, now: datetime, *, limit: int = 100) -> list[Result]:
    owner = secrets.token_hex(8)
    with deps.engine.connect() as conn:
        ids = [r.id for r in conn.execute(select(workflow_digests.c.id).where(
            _claimable(now), workflow_digests.c.due_at <= now).limit(limit))]
    results = []
    for digest_id in ids:
        with deps.engine.begin() as conn:
            # Claimed once: closing it (open_key NULL) also lets the next event open a new one. A
            # digest whose loop died while running is claimed again once its lease has passed; its
            # mail is not sent twice (once.digest_unit).
            claimed = conn.execute(update(workflow_digests).where(
                workflow_digests.c.id == digest_id, _claimable(now)).values(
                state="running", open_key=None, lease_until=now + LEASE, outcome={"claimed_by": owner})).rowcount
            row = conn.execute(select(workflow_digests).where(workflow_digests.c.id == digest_id)).first() \
                if claimed else None
        if row is None:
            continue
        result = await _send(deps, row)
        with deps.engine.begin() as conn:
            conn.execute(update(workflow_digests).where(workflow_digests.c.id == digest_id).values(
                state="done", message_id=result.message_id, outcome=result.to_dict()))
        results.append(result)
    return results


async def _send(deps: Deps, row: Any) -> Result:
    tenant = load_tenant(deps.engine, row.tenant_id)
    workflow = get_workflow(deps.engine, row.tenant_id, row.workflow_id, row.version)
    events = _events(deps.engine, row.tenant_id, row.id)
    latest = events[-1]
    action = workflow.definition.actions[row.action]
    resolved = resolve(action.recipients[row.recipient], latest)
    person = Person(resolved.role, row.address, resolved.name, resolved.lang, resolved.timezone)
    context = {**latest.context(), "events": [e.context() for e in events], "count": len(events)}
    try:
        rendered = render_for(action, person, context, fallback_language(deps.engine, row.tenant_id))
    except TemplateError as exc:
        return Result(workflow.id, workflow.version, row.action, Outcome.TEMPLATE_FAILED, role=person.role,
                      recipient=person.address, reason=exc.message, lang=exc.lang)
    return await deliver(deps, tenant, workflow, row.action, person, rendered, None, unit=digest_unit(row.id))


def _events(engine: Engine, tenant_id: int, digest_id: int) -> list[Event]:
    with engine.connect() as conn:
        ids = [r.event_id for r in conn.execute(select(workflow_digest_events.c.event_id).where(
            workflow_digest_events.c.digest_id == digest_id).order_by(workflow_digest_events.c.id))]
    return [load_event(engine, tenant_id, event_id)[0] for event_id in ids]


def digest_of(engine: Engine, tenant_id: int, digest_id: int) -> dict[str, Any]:
    """A digest with the events it collected and the message it became (once sent)."""
    with engine.connect() as conn:
        row = conn.execute(select(workflow_digests).where(workflow_digests.c.id == digest_id,
                                                          workflow_digests.c.tenant_id == tenant_id)).first()
        if row is None:
            raise NotFoundError(f"No digest {digest_id}.", code="digest_not_found",
                                hint="Use the digest id from an event's answer (outcome collected).")
        events = [r.event_id for r in conn.execute(select(workflow_digest_events.c.event_id).where(
            workflow_digest_events.c.digest_id == digest_id).order_by(workflow_digest_events.c.id))]
    return {"id": row.id, "workflow_id": row.workflow_id, "version": row.version, "action": row.action,
            "recipient": row.address, "state": row.state, "due_at": iso_utc(row.due_at), "events": events,
            "message_id": row.message_id}
