"""Handling an event, as a list of named steps: check it, record it once (idempotency), find the
enabled workflows on its type, test their conditions, and for each e-mail action and recipient
send now or schedule for later. The answer lists every message made and, where none was, why.

Also the use cases around a workflow the faces offer: save (with step 2's verdict now), dry run,
preview and test send."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from ..db.schema import iso_utc, utcnow
from ..domains import find_domain
from ..errors import InputError
from ..tenants import Tenant
from ..vocab import Outcome
from .action import Deps, Person, Rendered, Result, render_for, resolve, run_action
from .delays import DelayFieldError, due_at, schedule
from .digests import collect
from .definition import parse_definition
from .events import Event, parse_event, record_event, release_event, store_answer
from .sender import sender_verdict
from .store import Workflow, create_workflow, fallback_language, get_workflow, list_workflows, update_workflow
from .templates import TemplateError


async def handle_event(deps: Deps, tenant: Tenant, data: Any, *, now: datetime | None = None,
                       dry_run: bool = False) -> dict[str, Any]:
    now = now or utcnow()
    event = parse_event(data, now=now)
    if dry_run:
        return _answer(event, await _fire(deps, tenant, event, now, dry_run=True), dry_run=True)
    event, previous = record_event(deps.engine, tenant.id, event, now=now)
    if previous is not None:
        return {**previous, "duplicate": True}
    try:
        results = await _fire(deps, tenant, event, now, dry_run=False)
    except BaseException:
        release_event(deps.engine, event.id)  # nothing answered: a repeat handles it again
        raise
    answer = _answer(event, results, dry_run=False)
    store_answer(deps.engine, event.id, answer)
    return answer


async def _fire(deps: Deps, tenant: Tenant, event: Event, now: datetime, *, dry_run: bool) -> list[Result]:
    flows = list_workflows(deps.engine, tenant.id, trigger=event.type.value, enabled_only=True)
    if not flows:
        return []
    fallback = fallback_language(deps.engine, tenant.id)
    context = event.context()
    results: list[Result] = []
    for workflow in flows:
        if not workflow.definition.conditions.holds(context):
            results.append(Result(workflow.id, workflow.version, -1, Outcome.CONDITION_FALSE,
                                  reason="the workflow's conditions do not hold for this event"))
            continue
        for a, action in enumerate(workflow.definition.actions):
            for r, recipient in enumerate(action.recipients):
                results.append(await _one(deps, tenant, workflow, a, r, event, now, fallback, dry_run=dry_run))
    return results


async def _one(deps: Deps, tenant: Tenant, workflow: Workflow, a: int, r: int, event: Event, now: datetime,
               fallback: str, *, dry_run: bool) -> Result:
    person = resolve(workflow.definition.actions[a].recipients[r], event)
    if person.timezone is None and tenant.time_zone:  # "recipient" local time: hers, else the tenant's
        person = replace(person, timezone=tenant.time_zone)
    try:
        when = due_at(workflow.definition.delay, event, person)
    except DelayFieldError as exc:
        return Result(workflow.id, workflow.version, a, Outcome.DELAY_FIELD_INVALID, role=person.role,
                      recipient=person.address, reason=str(exc))
    action = workflow.definition.actions[a]
    if action.digest is not None and person.address is not None:
        if dry_run:
            return Result(workflow.id, workflow.version, a, Outcome.WOULD_SEND, role=person.role,
                          recipient=person.address, reason="would be collected into the recipient's digest")
        return collect(deps, tenant, workflow, a, r, event, person, now)
    if when > now:
        if not dry_run:
            schedule(deps.engine, tenant.id, event.id, workflow.id, workflow.version, a, r, when)  # type: ignore[arg-type]
        return Result(workflow.id, workflow.version, a, Outcome.DELAYED, role=person.role, recipient=person.address,
                      due_at=iso_utc(when), reason=f"delayed until {iso_utc(when)}")
    return await run_action(deps, tenant, workflow, a, r, event, fallback=fallback, dry_run=dry_run)


def _answer(event: Event, results: list[Result], *, dry_run: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {"id": event.id, "type": event.type.value, "idempotency_key": event.idempotency_key,
                              "occurred_at": iso_utc(event.occurred_at), "duplicate": False,
                              "results": [r.to_dict() for r in results]}
    if dry_run:
        answer["dry_run"] = True
    if not results:
        answer["results"] = [{"outcome": Outcome.NO_WORKFLOW.value,
                              "reason": f"no enabled workflow is triggered by {event.type.value}"}]
    answer["messages"] = [r.message_id for r in results if r.message_id]
    return answer


async def save_workflow(deps: Deps, tenant: Tenant, data: Any, *, workflow_id: int | None = None,
                        enabled: bool = True) -> dict[str, Any]:
    """Create or edit (a new version); the answer carries each action's sender verdict now."""
    check_senders(deps, tenant.id, data)
    if workflow_id is None:
        workflow = create_workflow(deps.engine, tenant.id, data, enabled=enabled)
    else:
        workflow = update_workflow(deps.engine, tenant.id, workflow_id, data)
    return {**workflow.to_dict(), "senders": await verdicts(deps, tenant, workflow)}


async def verdicts(deps: Deps, tenant: Tenant, workflow: Workflow) -> list[dict[str, Any]]:
    return [(await sender_verdict(deps.engine, deps.resolver, deps.settings, tenant_id=tenant.id,
                                  tenant_name=tenant.display_name, policy=tenant.sender_policy,
                                  spec=action.sender)).to_dict() for action in workflow.definition.actions]


def check_senders(deps: Deps, tenant_id: int, data: Any) -> None:
    """Refuse a sender domain that is not the tenant's before anything is stored."""
    for action in parse_definition(data).actions:
        if action.sender.domain is None:
            continue
        domain = find_domain(deps.engine, action.sender.domain, tenant_id=tenant_id)
        if domain is None or domain.tenant_id != tenant_id:
            raise InputError(f"{action.sender.domain} is not one of your sender domains.", code="sender_domain_unknown",
                             hint="Add it with POST /v1/domains (or 'postbote domain add'), or leave domain empty "
                                  "for the default sender.")


SAMPLE_PEOPLE = {
    "employee": {"email": "erika.mustermann@example.com", "name": "Erika Mustermann", "lang": "de"},
    "manager": {"email": "max.mustermann@example.com", "name": "Max Mustermann", "lang": "de"},
    "candidate": {"email": "ana.garcia@example.com", "name": "Ana García", "lang": "es"},
    "hr_contact": {"email": "hr@example.com", "name": "HR", "lang": "en"},
    "signer": {"email": "jane.doe@example.com", "name": "Jane Doe", "lang": "en"},
}


def sample_event(workflow: Workflow, fields: dict[str, Any] | None = None) -> Event:
    """Sample data for a preview: every role filled in, the fields the caller gives."""
    return parse_event({"type": workflow.definition.trigger.value, "idempotency_key": "preview",
                        "people": SAMPLE_PEOPLE, "fields": fields or {}})


def preview(deps: Deps, tenant: Tenant, workflow_id: int, *, event_data: Any = None, lang: str | None = None,
            version: int | None = None) -> dict[str, Any]:
    """Each action rendered, in ``lang`` or each template language, with sample data or the event given."""
    workflow = get_workflow(deps.engine, tenant.id, workflow_id, version)
    event = parse_event(event_data) if event_data is not None else sample_event(workflow)
    fallback = fallback_language(deps.engine, tenant.id)
    out = []
    for a, action in enumerate(workflow.definition.actions):
        person = resolve(action.recipients[0], event)
        rendered: list[Rendered | dict[str, Any]] = []
        for want in ([lang] if lang else list(action.templates)):
            try:
                rendered.append(render_for(action, _with_lang(person, want), event.context(), fallback))
            except TemplateError as exc:
                rendered.append({"lang": want, "error": exc.to_dict()})
        out.append({"action": a, "class": action.message_class.value,
                    "renders": [r.to_dict() if isinstance(r, Rendered) else r for r in rendered]})
    return {"workflow_id": workflow.id, "version": workflow.version, "actions": out}


def _with_lang(person: Person, lang: str) -> Person:
    return Person(person.role, person.address, person.name, lang, person.timezone)


async def test_send(deps: Deps, tenant: Tenant, workflow_id: int, to: str, *, event_data: Any = None,
                    lang: str | None = None) -> dict[str, Any]:
    """Each action's mail once, to ``to`` only, subject marked [TEST] and recorded as a test."""
    workflow = get_workflow(deps.engine, tenant.id, workflow_id)
    event = parse_event(event_data) if event_data is not None else sample_event(workflow)
    if lang:
        event = Event(event.type, event.idempotency_key, event.occurred_at,
                      {role: {**p, "lang": lang} for role, p in event.people.items()}, event.fields)
    fallback = fallback_language(deps.engine, tenant.id)
    results = [await run_action(deps, tenant, workflow, a, 0, event, fallback=fallback, test_to=to)
               for a in range(len(workflow.definition.actions))]
    return {"workflow_id": workflow.id, "version": workflow.version, "test": True,
            "results": [r.to_dict() for r in results]}
