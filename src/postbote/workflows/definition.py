"""A workflow's definition, checked: trigger, conditions, delay and the e-mail actions in their
three steps (recipients, sender, template). What is stored is the JSON as validated; what the
runner uses are these typed records, built from it again when a version is loaded."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..compose import check_header_value, parse_mailbox
from ..durations import parse_duration
from ..errors import InputError
from ..vocab import EventType, MessageClass, Role
from .conditions import Condition, parse_conditions
from .templates import TemplateError, compile_template

MAX_ACTIONS = 5
MAX_RECIPIENTS = 20
MAX_NAME = 200
MAX_DEFINITION = 512_000  # bytes of JSON, templates included
_LANG = re.compile(r"^[a-z]{2}$")
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_FIELD = re.compile(r"^fields\.[A-Za-z0-9_-]{1,64}$")


class DefinitionError(InputError):
    code = "workflow_invalid"

    def __init__(self, message: str, *, where: str, hint: str | None = None, code: str | None = None):
        super().__init__(f"{where}: {message}", hint=hint or "See the workflow definition in the README.", code=code)
        self.details = [{"where": where, "reason": message}]


@dataclass(frozen=True, slots=True)
class Recipient:
    role: Role | None = None  # resolved from the event's people
    address: str | None = None  # a fixed address
    name: str = ""
    lang: str | None = None  # a fixed address's language

    def to_dict(self) -> dict[str, Any]:
        if self.role is not None:
            return {"role": self.role.value}
        return {"address": self.address, "name": self.name, "lang": self.lang}


@dataclass(frozen=True, slots=True)
class SenderSpec:
    """Step 2: ``domain`` None is the platform's default sender."""

    domain: str | None = None
    local_part: str = "notification"
    display_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "local_part": self.local_part, "display_name": self.display_name}


@dataclass(frozen=True, slots=True)
class Template:
    subject: str
    text: str
    html: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "text": self.text, "html": self.html}


@dataclass(frozen=True, slots=True)
class Digest:
    """Collect a recipient's events into one mail: sent ``window`` seconds after the first one,
    or, with ``at``, at the next HH:MM in ``timezone`` ("recipient": the recipient's own)."""

    window: float = 0.0
    at: tuple[int, int] | None = None
    timezone: str = "UTC"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"window": _signed(self.window)} if self.window else {}
        if self.at:
            out["at"] = f"{self.at[0]:02d}:{self.at[1]:02d}"
            out["timezone"] = self.timezone
        return out


@dataclass(frozen=True, slots=True)
class Action:
    recipients: tuple[Recipient, ...]
    sender: SenderSpec
    templates: dict[str, Template]  # by language
    message_class: MessageClass = MessageClass.TRANSACTIONAL
    digest: Digest | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"class": self.message_class.value, "recipients": [r.to_dict() for r in self.recipients],
               "sender": self.sender.to_dict(), "templates": {k: t.to_dict() for k, t in self.templates.items()}}
        if self.digest is not None:
            out["digest"] = self.digest.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class Delay:
    """When to send: ``offset`` seconds after the event (or after the date in ``field``; negative
    is before), then, if ``at`` is set, at that local time in ``timezone`` ("recipient": the
    recipient's own, else UTC)."""

    offset: float = 0.0
    field: str | None = None
    at: tuple[int, int] | None = None
    timezone: str = "UTC"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"offset": _signed(self.offset)}
        if self.field:
            out["field"] = self.field
        if self.at:
            out["at"] = f"{self.at[0]:02d}:{self.at[1]:02d}"
            out["timezone"] = self.timezone
        return out


@dataclass(frozen=True, slots=True)
class Definition:
    name: str
    trigger: EventType
    conditions: Condition
    actions: tuple[Action, ...]
    delay: Delay | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "trigger": self.trigger.value, "conditions": self.conditions.tree,
                               "actions": [a.to_dict() for a in self.actions]}
        if self.delay is not None:
            out["delay"] = self.delay.to_dict()
        return out


def _signed(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    return f"{sign}{int(abs(seconds))}s"


def parse_definition(data: Any) -> Definition:
    """Check a whole definition; the first fault raises with where it is."""
    if not isinstance(data, dict):
        raise DefinitionError("the workflow is an object", where="workflow")
    if len(json.dumps(data, default=str)) > MAX_DEFINITION:
        raise DefinitionError(f"larger than {MAX_DEFINITION} bytes", where="workflow", code="workflow_too_large",
                              hint="Keep templates short; put long texts in fewer languages or actions.")
    unknown = set(data) - {"name", "trigger", "conditions", "delay", "actions"}
    if unknown:
        raise DefinitionError(f"unknown key {sorted(unknown)[0]!r}", where="workflow")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise DefinitionError(f"'name' is required, at most {MAX_NAME} characters", where="name")
    try:
        trigger = EventType(data.get("trigger"))
    except ValueError:
        raise DefinitionError(f"unknown event type {data.get('trigger')!r}", where="trigger", code="event_type_unknown",
                              hint="Use one of: " + ", ".join(t.value for t in EventType)) from None
    conditions = parse_conditions(data.get("conditions"))
    delay = _delay(data["delay"]) if data.get("delay") is not None else None
    actions = data.get("actions")
    if not isinstance(actions, list) or not 1 <= len(actions) <= MAX_ACTIONS:
        raise DefinitionError(f"give 1 to {MAX_ACTIONS} e-mail actions", where="actions")
    parsed = tuple(_action(a, f"actions[{i}]") for i, a in enumerate(actions))
    if delay is not None and any(a.digest for a in parsed):
        raise DefinitionError("a workflow with a digest action has no delay: the digest says when it is sent",
                              where="delay")
    return Definition(name.strip(), trigger, conditions, parsed, delay)


def _delay(data: Any) -> Delay:
    where = "delay"
    if not isinstance(data, dict) or set(data) - {"offset", "field", "at", "timezone"}:
        raise DefinitionError("give offset, field, at and timezone only", where=where)
    offset_text = str(data.get("offset", "0s")).strip()
    sign = -1 if offset_text.startswith("-") else 1
    try:
        offset = sign * parse_duration(offset_text.lstrip("+-"))
    except ValueError as exc:
        raise DefinitionError(str(exc), where="delay.offset") from None
    if abs(offset) > 366 * 86400:
        raise DefinitionError("at most a year", where="delay.offset")
    field_ = data.get("field")
    if field_ is not None and (not isinstance(field_, str) or not _FIELD.match(field_)):
        raise DefinitionError("a date field of the event, e.g. fields.first_day", where="delay.field")
    at = None
    if data.get("at") is not None:
        match = _CLOCK.match(str(data["at"]))
        if not match:
            raise DefinitionError("a time of day as HH:MM", where="delay.at")
        at = (int(match[1]), int(match[2]))
    zone = str(data.get("timezone", "recipient" if at else "UTC"))
    if zone != "recipient":
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise DefinitionError(f"unknown time zone {zone!r}", where="delay.timezone",
                                  hint="Use 'recipient' or an IANA name such as Europe/Berlin.") from None
    return Delay(offset, field_, at, zone)


def _action(data: Any, where: str) -> Action:
    if not isinstance(data, dict) or set(data) - {"class", "recipients", "sender", "templates", "digest"}:
        raise DefinitionError("an action has class, recipients, sender, templates and digest", where=where)
    try:
        message_class = MessageClass(data.get("class", "transactional"))
    except ValueError:
        raise DefinitionError("class is transactional or bulk", where=f"{where}.class") from None
    recipients = data.get("recipients")
    if not isinstance(recipients, list) or not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise DefinitionError(f"step 1: give 1 to {MAX_RECIPIENTS} recipients", where=f"{where}.recipients")
    parsed = tuple(_recipient(r, f"{where}.recipients[{i}]") for i, r in enumerate(recipients))
    sender = _sender(data.get("sender") or {}, f"{where}.sender")
    templates = data.get("templates")
    if not isinstance(templates, dict) or not templates or len(templates) > 20:
        raise DefinitionError("step 3: give templates by language, e.g. {\"de\": {...}, \"en\": {...}}",
                              where=f"{where}.templates")
    digest = _digest(data["digest"], f"{where}.digest") if data.get("digest") is not None else None
    return Action(parsed, sender, {lang: _template(lang, t, f"{where}.templates.{lang}") for lang, t in templates.items()},
                  message_class, digest)


def _digest(data: Any, where: str) -> Digest:
    if not isinstance(data, dict) or set(data) - {"window", "at", "timezone"} or not ({"window", "at"} & set(data)):
        raise DefinitionError("a digest has window (e.g. 1d) or at (HH:MM), and optionally timezone", where=where)
    window = 0.0
    if data.get("window") is not None:
        try:
            window = parse_duration(str(data["window"]))
        except ValueError as exc:
            raise DefinitionError(str(exc), where=f"{where}.window") from None
        if not 60 <= window <= 31 * 86400:
            raise DefinitionError("from 1 minute to 31 days", where=f"{where}.window")
    at = None
    if data.get("at") is not None:
        match = _CLOCK.match(str(data["at"]))
        if not match:
            raise DefinitionError("a time of day as HH:MM", where=f"{where}.at")
        at = (int(match[1]), int(match[2]))
    zone = str(data.get("timezone", "recipient" if at else "UTC"))
    if zone != "recipient":
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise DefinitionError(f"unknown time zone {zone!r}", where=f"{where}.timezone") from None
    return Digest(window, at, zone)


def _recipient(data: Any, where: str) -> Recipient:
    if not isinstance(data, dict):
        raise DefinitionError("a recipient is {\"role\": …} or {\"address\": …}", where=where)
    if "role" in data:
        if set(data) != {"role"}:
            raise DefinitionError("a role recipient has only 'role'", where=where)
        try:
            return Recipient(role=Role(data["role"]))
        except ValueError:
            raise DefinitionError(f"unknown role {data['role']!r}; use " + ", ".join(r.value for r in Role),
                                  where=where) from None
    if set(data) - {"address", "name", "lang"} or not isinstance(data.get("address"), str):
        raise DefinitionError("a fixed recipient has address, and optionally name and lang", where=where)
    mailbox = parse_mailbox(data["address"], field="recipient")
    name = str(data.get("name") or mailbox.display_name)
    check_header_value("recipient name", name)
    lang = data.get("lang")
    if lang is not None and (not isinstance(lang, str) or not _LANG.match(lang)):
        raise DefinitionError("lang is a two-letter code such as de", where=where)
    return Recipient(address=mailbox.address, name=name[:200], lang=lang)


def _sender(data: Any, where: str) -> SenderSpec:
    if not isinstance(data, dict) or set(data) - {"domain", "local_part", "display_name"}:
        raise DefinitionError("step 2: the sender has domain (null: the default sender), local_part, display_name",
                              where=where)
    local = str(data.get("local_part") or "notification")
    if len(local) > 64 or not _LOCAL_PART.match(local):
        raise DefinitionError("local_part is the part before the @, e.g. jobs", where=f"{where}.local_part")
    display = str(data.get("display_name") or "")
    check_header_value("sender display name", display)
    if len(display) > MAX_NAME:
        raise DefinitionError(f"display_name is at most {MAX_NAME} characters", where=f"{where}.display_name")
    domain = data.get("domain")
    if domain is not None:
        domain = parse_mailbox(f"{local}@{domain}", field="sender").domain
    return SenderSpec(domain, local, display)


def _template(lang: Any, data: Any, where: str) -> Template:
    if not isinstance(lang, str) or not _LANG.match(lang):
        raise DefinitionError("languages are two-letter codes such as de, en, es", where=where)
    if not isinstance(data, dict) or set(data) - {"subject", "text", "html"}:
        raise DefinitionError("a template has subject, text and html", where=where)
    subject, text, html = data.get("subject"), data.get("text"), data.get("html")
    if not isinstance(subject, str) or not subject.strip():
        raise DefinitionError("the subject is required", where=f"{where}.subject")
    if not (isinstance(text, str) and text.strip()) and not (isinstance(html, str) and html.strip()):
        raise DefinitionError("give a text or an HTML body", where=where)
    for part, source in (("subject", subject), ("text", text), ("html", html)):
        if source is not None:
            if not isinstance(source, str):
                raise DefinitionError("a template part is a string", where=f"{where}.{part}")
            compile_template(source, html=part == "html", part=part, lang=lang)
    return Template(subject, text or "", html)


__all__ = ["Action", "Definition", "Digest", "DefinitionError", "Delay", "Recipient", "SenderSpec", "Template",
           "TemplateError", "parse_definition"]
