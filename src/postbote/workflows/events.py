"""Events from the HR platform: checked, size-limited, and recorded once per idempotency key —
the same event posted twice fires once, and the second post gets the first one's answer."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..db.schema import iso_utc, utcnow, workflow_events
from ..errors import ConflictError, InputError, NotFoundError
from ..vocab import EventType, Role

MAX_EVENT_BYTES = 64_000
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
_PERSON_KEYS = {"email", "name", "lang", "timezone"}


class EventError(InputError):
    code = "event_invalid"
    hint = "See the event format in the README: type, idempotency_key, occurred_at, people, fields."


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    idempotency_key: str
    occurred_at: datetime
    people: dict[str, dict[str, Any]]  # by role
    fields: dict[str, Any]
    id: int | None = None  # once recorded

    def context(self) -> dict[str, Any]:
        """What conditions and templates see."""
        return {"type": self.type.value, "occurred_at": iso_utc(self.occurred_at), "fields": self.fields,
                "people": self.people, **{role: person for role, person in self.people.items()}}

    def payload(self) -> dict[str, Any]:
        return {"type": self.type.value, "idempotency_key": self.idempotency_key,
                "occurred_at": iso_utc(self.occurred_at), "people": self.people, "fields": self.fields}


def parse_time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise EventError(f"{where} must be an ISO 8601 time, e.g. 2026-12-01T09:00:00Z.")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise EventError(f"{where} is not an ISO 8601 time: {value[:40]!r}.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def parse_event(data: Any, *, now: datetime | None = None) -> Event:
    if not isinstance(data, dict):
        raise EventError("The event is a JSON object.")
    if len(json.dumps(data, default=str)) > MAX_EVENT_BYTES:
        raise EventError(f"The event is larger than {MAX_EVENT_BYTES} bytes.", code="event_too_large",
                         hint="Send only the fields the templates and conditions use.")
    unknown = set(data) - {"type", "idempotency_key", "occurred_at", "people", "fields"}
    if unknown:
        raise EventError(f"Unknown key {sorted(unknown)[0]!r} in the event.")
    try:
        kind = EventType(data.get("type"))
    except ValueError:
        raise EventError(f"Unknown event type {data.get('type')!r}.", code="event_type_unknown",
                         hint="Use one of: " + ", ".join(t.value for t in EventType)) from None
    key = data.get("idempotency_key")
    if not isinstance(key, str) or not _KEY.match(key):
        raise EventError("idempotency_key is required: 1–200 printable ASCII characters, no spaces.",
                         code="idempotency_key_invalid",
                         hint="Use your own id of the occurrence, e.g. 'cand-4711-stage-3'; a repeat fires nothing.")
    occurred = parse_time(data["occurred_at"], "occurred_at") if data.get("occurred_at") else (now or utcnow())
    people = data.get("people") or {}
    if not isinstance(people, dict):
        raise EventError("people is an object by role, e.g. {\"candidate\": {\"email\": …}}.")
    checked: dict[str, dict[str, Any]] = {}
    for role, person in people.items():
        if role not in {r.value for r in Role}:
            raise EventError(f"Unknown role {role!r} in people.", hint="Roles: " + ", ".join(r.value for r in Role))
        if not isinstance(person, dict) or set(person) - _PERSON_KEYS:
            raise EventError(f"people.{role} has email, name, lang and timezone.")
        for name, value in person.items():
            if value is not None and not isinstance(value, str):
                raise EventError(f"people.{role}.{name} is a string.")
        checked[role] = dict(person)
    fields = data.get("fields") or {}
    if not isinstance(fields, dict):
        raise EventError("fields is an object.")
    return Event(kind, key, occurred, checked, fields)


LEASE = timedelta(minutes=2)  # how long a first handling holds its event before a repeat may take over


def record_event(engine: Engine, tenant_id: int, event: Event, *,
                 now: datetime | None = None) -> tuple[Event, dict[str, Any] | None]:
    """(the recorded event, the answer given the first time if this key was seen before).

    An event whose first handling broke off before it answered (the process died, or the
    handling failed and let go) is handled again by the next post of the same key — the event as
    first recorded, under its first id; what the broken run had sent already is not sent twice
    (``once``), and what it had scheduled is not scheduled twice."""
    now = now or utcnow()
    try:
        with engine.begin() as conn:
            event_id = conn.execute(insert(workflow_events).values(
                tenant_id=tenant_id, idempotency_key=event.idempotency_key, type=event.type.value,
                occurred_at=event.occurred_at, payload=event.payload(), answer=None, created_at=utcnow(),
                lease_until=now + LEASE,
            )).inserted_primary_key[0]
    except IntegrityError:
        return _seen_before(engine, tenant_id, event, now)
    return Event(event.type, event.idempotency_key, event.occurred_at, event.people, event.fields, event_id), None


def _seen_before(engine: Engine, tenant_id: int, event: Event, now: datetime) -> tuple[Event, dict[str, Any] | None]:
    with engine.begin() as conn:
        row = conn.execute(select(workflow_events).where(
            workflow_events.c.tenant_id == tenant_id,
            workflow_events.c.idempotency_key == event.idempotency_key)).first()
        if row is None:
            raise ConflictError("This event is being handled right now.", code="event_in_progress",
                                hint="Post it again in a moment.")
        if row.answer is not None:
            first = parse_event(row.payload)
            return Event(first.type, first.idempotency_key, first.occurred_at, first.people, first.fields, row.id), row.answer
        taken = conn.execute(update(workflow_events).where(
            workflow_events.c.id == row.id, workflow_events.c.answer.is_(None),
            or_(workflow_events.c.lease_until.is_(None), workflow_events.c.lease_until <= now)).values(
            lease_until=now + LEASE)).rowcount
    if not taken:
        raise ConflictError("This event is being handled right now.", code="event_in_progress",
                            hint="Post it again in a moment; it will not fire twice.")
    first = parse_event(row.payload)
    return Event(first.type, first.idempotency_key, first.occurred_at, first.people, first.fields, row.id), None


def store_answer(engine: Engine, event_id: int, answer: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(update(workflow_events).where(workflow_events.c.id == event_id).values(
            answer=answer, lease_until=None))


def release_event(engine: Engine, event_id: int) -> None:
    """The handling failed before it answered: the next post of the same key handles it again."""
    with engine.begin() as conn:
        conn.execute(update(workflow_events).where(workflow_events.c.id == event_id,
                                                   workflow_events.c.answer.is_(None)).values(lease_until=None))


def load_event(engine: Engine, tenant_id: int, event_id: int) -> tuple[Event, dict[str, Any] | None]:
    with engine.connect() as conn:
        row = conn.execute(select(workflow_events).where(workflow_events.c.id == event_id,
                                                         workflow_events.c.tenant_id == tenant_id)).first()
    if row is None:
        raise NotFoundError(f"No event {event_id}.", code="event_not_found",
                            hint="Use the id from the answer to POST /v1/events.")
    event = parse_event(row.payload)
    return Event(event.type, event.idempotency_key, event.occurred_at, event.people, event.fields, row.id), row.answer
