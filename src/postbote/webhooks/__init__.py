"""Webhooks: a tenant's endpoints hear of every line of its logs they select — a message's
timeline, its sender domains' states, its suppression list — signed as the Standard Webhooks
specification says, in order per subject, at least once, retried for WEBHOOK_MAX_AGE and then
parked for replay.

The way of a call: ``dispatch`` (a log line becomes a call per endpoint that selects it) →
``call.claim`` (leased, earliest of its subject first) → ``call.make`` (address checked, signed,
POSTed) → ``call.record`` (the attempt, then delivered, retried or dead)."""

from .dispatch import dispatch
from .endpoints import Endpoint
from .history import get_call, list_calls, replay
from .loop import run_webhooks
from .types import SELECTABLE, WebhookEvent

__all__ = ["Endpoint", "WebhookEvent", "SELECTABLE", "dispatch", "get_call", "list_calls", "replay", "run_webhooks"]
