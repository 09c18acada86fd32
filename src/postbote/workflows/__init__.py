"""Workflows: events from the HR platform, triggers, conditions, delays and the e-mail action in
three steps (recipients, sender, template)."""

from .action import Deps, Result, run_action
from .conditions import Condition, ConditionError, parse_conditions
from .definition import Action, Definition, DefinitionError, parse_definition
from .delays import due_at, run_due, send_due_forever
from .digests import digest_of
from .events import Event, EventError, load_event, parse_event
from .run import handle_event, preview, save_workflow, test_send, verdicts
from .sender import SenderVerdict, sender_verdict
from .store import (
    Workflow,
    fallback_language,
    get_workflow,
    list_versions,
    list_workflows,
    set_enabled,
    set_fallback_language,
    check_language,
)
from .templates import TemplateError, render
from .unsubscribe import UNSUBSCRIBE_LOCAL_PART, Unsubscribe, make_token, read_token, unsubscribe

__all__ = [
    "Deps", "Result", "run_action", "Condition", "ConditionError", "parse_conditions", "Action", "Definition",
    "DefinitionError", "parse_definition", "due_at", "run_due", "send_due_forever", "digest_of", "Event", "EventError", "load_event", "parse_event",
    "handle_event", "preview", "save_workflow", "test_send", "verdicts", "SenderVerdict", "sender_verdict",
    "Workflow", "fallback_language", "get_workflow", "list_versions", "list_workflows", "set_enabled",
    "set_fallback_language", "check_language", "TemplateError", "render", "UNSUBSCRIBE_LOCAL_PART", "Unsubscribe", "make_token", "read_token", "unsubscribe",
]
