"""Delays: when a recipient's mail is due ("3 days before fields.first_day, at 09:00 in the
recipient's time zone"), and the loop step that sends what has come due.

``run_due`` is a plain async function with the time passed in, so the periodic loop of the
running system and the tests (with a clock of their own) call the same code. A job is claimed by
one conditional update, so two loops on two hosts never send the same job twice."""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine, and_, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..errors import StoreError

from ..db.schema import utcnow, workflow_jobs
from ..vocab import Outcome
from .action import Deps, Person, Result, run_action
from .definition import Delay
from .digests import send_due_digests
from .events import Event, load_event
from .store import fallback_language, get_workflow, load_tenant


class DelayFieldError(ValueError):
    """The date field a delay is relative to is missing or not a date."""


def due_at(delay: Delay | None, event: Event, person: Person) -> datetime:
    if delay is None:
        return event.occurred_at
    base = event.occurred_at
    if delay.field:
        base = _date_field(event.fields.get(delay.field.removeprefix("fields.")), delay.field)
    try:
        due = base + timedelta(seconds=delay.offset)
        if delay.at is not None:
            zone = _zone(person.timezone if delay.timezone == "recipient" else delay.timezone)
            local_day = due.astimezone(zone).date()
            due = datetime.combine(local_day, time(*delay.at), tzinfo=zone).astimezone(timezone.utc)
    except (OverflowError, ValueError):  # a date at the end of the calendar, plus an offset
        raise DelayFieldError(f"{delay.field or 'the event time'} plus the delay is outside the calendar") from None
    return due


def _date_field(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise DelayFieldError(f"the event has no date in {name}")
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(0, 0), tzinfo=timezone.utc)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DelayFieldError(f"{name} is not an ISO date: {value[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")  # an unknown zone from the event: UTC rather than no mail


def schedule(engine: Engine, tenant_id: int, event_id: int, workflow_id: int, version: int, action: int,
             recipient: int, when: datetime) -> None:
    """One job per event, workflow, action and recipient: an event handled again after a crash
    finds its job already there."""
    try:
        with engine.begin() as conn:
            conn.execute(insert(workflow_jobs).values(
                tenant_id=tenant_id, event_id=event_id, workflow_id=workflow_id, version=version, action=action,
                recipient=recipient, due_at=when, state="waiting", created_at=utcnow()))
    except IntegrityError:
        pass


async def run_due(deps: Deps, *, now: datetime | None = None, limit: int = 100) -> list[Result]:
    """Send every waiting job and every digest due by ``now``; returns what each did."""
    now = now or utcnow()
    digests = await send_due_digests(deps, now, limit=limit)
    owner = secrets.token_hex(8)
    with deps.engine.connect() as conn:
        ids = [r.id for r in conn.execute(select(workflow_jobs.c.id).where(
            _claimable(now), workflow_jobs.c.due_at <= now).order_by(workflow_jobs.c.due_at)
            .limit(limit))]
    results = []
    for job_id in ids:
        job = claim_job(deps.engine, job_id, owner, now=now)
        if job is None:
            continue  # another loop took it
        try:
            result = await _run_job(deps, job)
        except Exception as error:
            _failed(deps.engine, job, error, now)
            continue
        with deps.engine.begin() as conn:
            conn.execute(update(workflow_jobs).where(workflow_jobs.c.id == job_id).values(
                state="done", outcome=result.to_dict()))
        results.append(result)
    return digests + results


JOB_RETRIES = 5  # a job that failed this often is given up (state failed) instead of tried for ever
JOB_RETRY_WAIT = timedelta(minutes=5)


def _failed(engine: Engine, job, error: Exception, now: datetime) -> None:
    """A job whose run raised (the store away, the event gone): back to waiting, later, with what
    went wrong kept in its outcome — and failed for good after JOB_RETRIES."""
    failures = int((job.outcome or {}).get("failures", 0)) + 1 if isinstance(job.outcome, dict) else 1
    logging.getLogger("postbote.workflows").warning("delayed workflow job %s failed (%s), attempt %d",
                                                     job.id, error.__class__.__name__, failures)
    state = "failed" if failures >= JOB_RETRIES else "waiting"
    with engine.begin() as conn:
        conn.execute(update(workflow_jobs).where(workflow_jobs.c.id == job.id).values(
            state=state, claimed_by=None, due_at=now + JOB_RETRY_WAIT * failures,
            outcome={"failures": failures, "error": error.__class__.__name__}))


async def send_due_forever(deps: Deps, stop: asyncio.Event, *, interval: float = 15.0) -> None:
    """The periodic loop: ``run_due`` every ``interval`` seconds until ``stop`` is set."""
    log = logging.getLogger("postbote.workflows")
    while not stop.is_set():
        try:
            await run_due(deps)
        except (DBAPIError, StoreError) as error:  # the store away: said in one line, tried again next round
            log.warning("delayed workflow mail waits for the store: %s", error.__class__.__name__)
        except Exception:
            log.exception("sending delayed workflow mail failed")
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except asyncio.TimeoutError:
            pass


LEASE = timedelta(minutes=5)  # a job running longer than this is taken over: its loop is gone


def _claimable(now: datetime):
    """Waiting, or running under a lease that has passed (the loop that took it died) or that was
    never given (claimed before leases existed)."""
    return or_(workflow_jobs.c.state == "waiting",
               and_(workflow_jobs.c.state == "running",
                    or_(workflow_jobs.c.lease_until.is_(None), workflow_jobs.c.lease_until <= now)))


def claim_job(engine: Engine, job_id: int, owner: str, *, now: datetime | None = None):
    """The job's row if this loop got it; None if another loop was first (one conditional update).
    A job taken over from a dead loop does not send twice: its mail is a unit of ``once``."""
    now = now or utcnow()
    with engine.begin() as conn:
        claimed = conn.execute(update(workflow_jobs).where(workflow_jobs.c.id == job_id, _claimable(now))
                               .values(state="running", claimed_by=owner, lease_until=now + LEASE)).rowcount
        return conn.execute(select(workflow_jobs).where(workflow_jobs.c.id == job_id)).first() if claimed else None


async def _run_job(deps: Deps, job) -> Result:
    tenant = load_tenant(deps.engine, job.tenant_id)
    # The version fixed when the event came in: an edit in between does not change waiting mail.
    workflow = get_workflow(deps.engine, job.tenant_id, job.workflow_id, job.version)
    event, _ = load_event(deps.engine, job.tenant_id, job.event_id)
    if not _enabled_now(deps.engine, job.tenant_id, job.workflow_id):
        return Result(workflow.id, workflow.version, job.action, Outcome.WORKFLOW_DISABLED,
                      reason="the workflow was disabled before the mail was due")
    return await run_action(deps, tenant, workflow, job.action, job.recipient, event,
                            fallback=fallback_language(deps.engine, job.tenant_id))


def _enabled_now(engine: Engine, tenant_id: int, workflow_id: int) -> bool:
    return get_workflow(engine, tenant_id, workflow_id).enabled
