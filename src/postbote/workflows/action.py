"""The e-mail action for one recipient: step 1 (who, in which language), step 3 (render), step 2
(the sender, chosen again at send time by ``send``), then the message — one copy for this
recipient alone — recorded with the workflow and version that made it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from email.utils import formataddr
from typing import Any

from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError

from ..compose import Draft, check_header_value, parse_mailbox
from ..db.schema import utcnow, workflow_messages
from ..dns import Resolver
from ..errors import InputError
from ..queue import GroupCommit
from ..sending import send
from ..settings import Settings
from ..tenants import Tenant
from ..vocab import MessageClass, Outcome
from .definition import Action, Recipient
from .events import Event
from .once import event_unit, message_for
from .sender import sender_address
from .store import Workflow
from .templates import TemplateError, render
from .unsubscribe import UNSUBSCRIBE_LOCAL_PART, Unsubscribe, headers, make_token

TEST_PREFIX = "[TEST] "


@dataclass(frozen=True, slots=True)
class Deps:
    """What running a workflow needs, given explicitly (the composition root builds it)."""

    engine: Engine
    settings: Settings
    resolver: Resolver
    acceptor: GroupCommit | None = None  # the API's group commit; None: a transaction per message


@dataclass(frozen=True, slots=True)
class Person:
    role: str | None
    address: str | None
    name: str
    lang: str | None
    timezone: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "email": self.address, "name": self.name, "lang": self.lang,
                "timezone": self.timezone}


@dataclass(frozen=True, slots=True)
class Rendered:
    lang: str
    subject: str
    text: str
    html: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"lang": self.lang, "subject": self.subject, "text": self.text, "html": self.html}


@dataclass(frozen=True, slots=True)
class Result:
    """What one action did for one recipient (or why it did nothing)."""

    workflow_id: int
    version: int
    action: int
    outcome: Outcome
    role: str | None = None
    recipient: str | None = None
    lang: str | None = None
    message_id: str | None = None
    state: str | None = None
    sender: str | None = None
    sender_note: str | None = None
    reason: str | None = None
    due_at: str | None = None
    preview: Rendered | None = None
    test: bool = False
    details: list[Any] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {"workflow_id": self.workflow_id, "version": self.version, "action": self.action,
               "outcome": self.outcome.value, "role": self.role, "recipient": self.recipient, "lang": self.lang,
               "message_id": self.message_id, "state": self.state, "sender": self.sender,
               "sender_note": self.sender_note, "reason": self.reason, "due_at": self.due_at}
        if self.preview is not None:
            out["preview"] = self.preview.to_dict()
        if self.test:
            out["test"] = True
        return {k: v for k, v in out.items() if v is not None}


def resolve(recipient: Recipient, event: Event | None) -> Person:
    """Step 1: a role is looked up in the event's people; a fixed address is itself."""
    if recipient.role is None:
        return Person(None, recipient.address, recipient.name, recipient.lang, None)
    person = (event.people if event else {}).get(recipient.role.value) or {}
    return Person(recipient.role.value, (person.get("email") or "").strip() or None, person.get("name") or "",
                  person.get("lang"), person.get("timezone"))


def choose_language(action: Action, wanted: str | None, fallback: str) -> str:
    """The recipient's language if the action has it, else the tenant's fallback, else the first."""
    for lang in (wanted, fallback):
        if lang and lang in action.templates:
            return lang
    return next(iter(action.templates))


def render_for(action: Action, person: Person, event_context: dict[str, Any], fallback: str) -> Rendered:
    lang = choose_language(action, (person.lang or "").lower()[:2] or None, fallback)
    template = action.templates[lang]
    variables = {**event_context, "recipient": person.to_dict(), "lang": lang}
    subject = render(template.subject, variables, part="subject", lang=lang).strip()
    try:
        check_header_value("subject", subject)
    except InputError:
        raise TemplateError("the subject rendered with a line break or control character in it", part="subject", lang=lang,
                            hint="Keep line breaks out of the subject and of the fields it uses.") from None
    text = render(template.text, variables, part="text", lang=lang) if template.text else ""
    html = render(template.html, variables, html=True, part="html", lang=lang) if template.html else None
    return Rendered(lang, subject, text, html)


async def run_action(deps: Deps, tenant: Tenant, workflow: Workflow, action_index: int, recipient_index: int,
                     event: Event | None, *, fallback: str, dry_run: bool = False, test_to: str | None = None) -> Result:
    """A real send of an event's action is a unit of work sent at most once (see ``once``)."""
    action = workflow.definition.actions[action_index]
    person = resolve(action.recipients[recipient_index], event)
    base = dict(workflow_id=workflow.id, version=workflow.version, action=action_index, role=person.role)
    if test_to is not None:
        person = Person(person.role, parse_mailbox(test_to, field="recipient").address, person.name, person.lang,
                        person.timezone)
    if person.address is None:
        return Result(**base, outcome=Outcome.RECIPIENT_WITHOUT_ADDRESS,
                      reason=f"the event gives no e-mail address for the {person.role}")
    context = event.context() if event is not None else {}
    try:
        # Off the event loop: a template may take up to its time limit, and the loop serves everyone.
        rendered = await asyncio.to_thread(render_for, action, person, context, fallback)
    except TemplateError as exc:
        return Result(**base, outcome=Outcome.TEMPLATE_FAILED, recipient=person.address, reason=exc.message,
                      lang=exc.lang)
    if dry_run:
        return Result(**base, outcome=Outcome.WOULD_SEND, recipient=person.address, lang=rendered.lang,
                      sender=sender_address(action.sender, deps.settings), preview=rendered)
    unit = (event_unit(event.id, workflow.id, action_index, recipient_index)
            if event is not None and event.id is not None and test_to is None else None)
    return await deliver(deps, tenant, workflow, action_index, person, rendered, event.id if event else None,
                         test_to=test_to, unit=unit)


async def deliver(deps: Deps, tenant: Tenant, workflow: Workflow, action_index: int, person: Person,
                  rendered: Rendered, event_id: int | None, *, test_to: str | None = None,
                  unit: str | None = None) -> Result:
    """Send what was rendered to this one recipient and record the workflow and version. With a
    ``unit``, a message an earlier run of the same unit accepted is answered instead of sent again."""
    action = workflow.definition.actions[action_index]
    base = dict(workflow_id=workflow.id, version=workflow.version, action=action_index, role=person.role)
    sender = sender_address(action.sender, deps.settings)
    assert person.address is not None
    subject = TEST_PREFIX + rendered.subject if test_to is not None else rendered.subject
    to = str(parse_mailbox(person.address, field="recipient").address)
    extra: tuple[tuple[str, str], ...] = (("X-Postbote-Test", "yes"),) if test_to is not None else ()
    if action.message_class is MessageClass.BULK:
        extra += unsubscribe_headers(deps.settings, tenant.id, to, workflow.id)
    draft = Draft(sender=sender, recipients=[_named(person.name, to)], subject=subject, text=rendered.text or " ",
                  html=rendered.html, headers=extra)
    message_id = None
    if unit is not None:
        message_id, done = await asyncio.to_thread(message_for, deps.engine, tenant.id, unit)
        if done:  # an earlier run accepted it and stopped before saying so
            _record(deps.engine, tenant.id, message_id, workflow, action_index, person, rendered.lang,
                    action.message_class.value, event_id, test=False)
            return Result(**base, outcome=Outcome.SENT, recipient=to, lang=rendered.lang, message_id=message_id,
                          reason="accepted by an earlier run of the same work; not sent again")
    try:
        accepted = await asyncio.to_thread(send, deps.engine, deps.settings, tenant, draft, resolver=deps.resolver,
                                           message_class=action.message_class, acceptor=deps.acceptor,
                                           message_id=message_id)
    except InputError as exc:
        details = exc.details or []
        reasons = {d.get("reason") for d in details if isinstance(d, dict)}
        outcome = Outcome.RECIPIENT_SUPPRESSED if reasons == {"suppressed"} else Outcome.RECIPIENT_REFUSED
        return Result(**base, outcome=outcome, recipient=person.address, lang=rendered.lang, reason=exc.message,
                      details=details)
    _record(deps.engine, tenant.id, accepted.id, workflow, action_index, person, rendered.lang,
            action.message_class.value, event_id, test=test_to is not None)
    (address, state), = accepted.recipients
    return Result(**base, outcome=Outcome.SENT, recipient=address, lang=rendered.lang, message_id=accepted.id,
                  state=state.value, sender=accepted.sender, sender_note=accepted.sender_note, test=test_to is not None)


def unsubscribe_headers(settings: Settings, tenant_id: int, address: str, workflow_id: int) -> tuple[tuple[str, str], ...]:
    """RFC 8058 fields for one recipient's bulk copy: a signed HTTPS link and a mailto."""
    token = make_token(settings.SECRET_KEY, Unsubscribe(tenant_id, address, workflow_id))
    return headers(f"{settings.public_url}/v1/unsubscribe/{token}",
                   f"{UNSUBSCRIBE_LOCAL_PART}@{settings.return_path_host}", token)


def _named(name: str, address: str) -> str:
    return formataddr((name, address)) if name and "\r" not in name and "\n" not in name else address


def _record(engine: Engine, tenant_id: int, message_id: str, workflow: Workflow, action_index: int, person: Person,
            lang: str, message_class: str, event_id: int | None, *, test: bool) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(insert(workflow_messages).values(
                message_id=message_id, tenant_id=tenant_id, workflow_id=workflow.id, version=workflow.version,
                event_id=event_id, action=action_index, role=person.role, lang=lang,
                message_class=message_class, test=test, created_at=utcnow()))
    except IntegrityError:  # recorded by the earlier run of the same unit
        pass


__all__ = ["deliver", "Deps", "Person", "Rendered", "Result", "choose_language", "render_for", "resolve", "run_action"]
