"""Workflow mail at most once per unit of work, across crashes.

A unit is one recipient of one action of one workflow for one event (``event_unit``), or one
digest (``digest_unit``). Before its mail is accepted, the unit gets its message id in
``workflow_sends``; a run repeated later — a delayed job or digest whose loop died, an event
posted again after its first handling broke off — looks there first and finds the message the
first run accepted, instead of making a second one."""

from __future__ import annotations

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from ..compose import new_message_id
from ..db.schema import messages, utcnow, workflow_sends


def event_unit(event_id: int, workflow_id: int, action: int, recipient: int) -> str:
    return f"event:{event_id}:workflow:{workflow_id}:action:{action}:recipient:{recipient}"


def digest_unit(digest_id: int) -> str:
    return f"digest:{digest_id}"


def message_for(engine: Engine, tenant_id: int, unit: str) -> tuple[str, bool]:
    """(the unit's message id, whether a message with that id was accepted already)."""
    for _ in range(2):
        with engine.begin() as conn:
            row = conn.execute(select(workflow_sends.c.message_id).where(
                workflow_sends.c.tenant_id == tenant_id, workflow_sends.c.unit == unit)).first()
            if row is not None:
                accepted = conn.execute(select(messages.c.id).where(
                    messages.c.id == row.message_id, messages.c.tenant_id == tenant_id)).first() is not None
                return row.message_id, accepted
        try:
            chosen = new_message_id()
            with engine.begin() as conn:
                conn.execute(insert(workflow_sends).values(tenant_id=tenant_id, unit=unit, message_id=chosen,
                                                           created_at=utcnow()))
            return chosen, False
        except IntegrityError:
            continue  # another run chose first: read its choice
    raise RuntimeError(f"no message id for {unit}")  # pragma: no cover - the row vanished twice
