"""What a webhook can say: a closed vocabulary of event types, and how an endpoint selects them.

Each type names one line of a log: a message's timeline (``events``), a sender domain's state
(``domain_events``), a tenant's suppression list (``suppressions``), its workflow events and
delayed workflow jobs (``workflow_events``, ``workflow_jobs``). The raw line stays beside
the type in every payload (``data.kind``/``data.state``), as the log wrote it."""

from __future__ import annotations

from enum import StrEnum

from ..errors import InputError
from ..vocab import EventKind, SuppressionReason


class WebhookEvent(StrEnum):
    MESSAGE_QUEUED = "message.queued"  # accepted; each recipient waits for its first attempt
    MESSAGE_HELD = "message.held"  # accepted and held by the tenant's sender policy
    MESSAGE_DEFERRED = "message.deferred"  # a temporary failure; retried at data.next_attempt_at
    MESSAGE_DELIVERED = "message.delivered"
    MESSAGE_BOUNCED = "message.bounced"  # refused for good, during the session or by a report after it
    MESSAGE_EXPIRED = "message.expired"  # retried until MAX_LIFETIME without success
    MESSAGE_RELEASED = "message.released"
    MESSAGE_CANCELLED = "message.cancelled"
    MESSAGE_COMPLAINED = "message.complained"  # the recipient reported it as spam (ARF)
    DOMAIN_VERIFIED = "domain.verified"
    DOMAIN_BROKEN = "domain.broken"  # was verified, its records are wrong now
    DOMAIN_FAILED = "domain.failed"  # never verified, a record points elsewhere
    RECIPIENT_UNSUBSCRIBED = "recipient.unsubscribed"  # one-click unsubscribe from bulk mail
    RECIPIENT_SUPPRESSED = "recipient.suppressed"  # put on the suppression list for any other reason
    WORKFLOW_EVENT_HANDLED = "workflow.event_handled"  # a posted event was handled: what each workflow did
    WORKFLOW_JOB_FAILED = "workflow.job_failed"  # delayed workflow mail given up after its retries
    WEBHOOK_TEST = "webhook.test"  # sent on request only, never selected


# A message's timeline line -> its webhook type; lines not here (reports that changed nothing)
# are not sent.
MESSAGE_TYPES = {
    EventKind.DEFERRED.value: WebhookEvent.MESSAGE_DEFERRED,
    EventKind.DELIVERED.value: WebhookEvent.MESSAGE_DELIVERED,
    EventKind.BOUNCED.value: WebhookEvent.MESSAGE_BOUNCED,
    EventKind.EXPIRED.value: WebhookEvent.MESSAGE_EXPIRED,
    EventKind.HELD.value: WebhookEvent.MESSAGE_HELD,
    EventKind.RELEASED.value: WebhookEvent.MESSAGE_RELEASED,
    EventKind.CANCELLED.value: WebhookEvent.MESSAGE_CANCELLED,
    EventKind.COMPLAINED.value: WebhookEvent.MESSAGE_COMPLAINED,
}

DOMAIN_TYPES = {"verified": WebhookEvent.DOMAIN_VERIFIED, "broken": WebhookEvent.DOMAIN_BROKEN,
                "failed": WebhookEvent.DOMAIN_FAILED}

MAX_SELECTION = 32
SELECTABLE = tuple(t.value for t in WebhookEvent if t is not WebhookEvent.WEBHOOK_TEST)
_GROUPS = sorted({t.split(".")[0] for t in SELECTABLE})


def message_type(kind: str, data: dict) -> WebhookEvent | None:
    if kind == EventKind.ACCEPTED.value:
        return WebhookEvent.MESSAGE_HELD if data.get("held") else WebhookEvent.MESSAGE_QUEUED
    return MESSAGE_TYPES.get(kind)


def suppression_type(reason: str) -> WebhookEvent:
    return (WebhookEvent.RECIPIENT_UNSUBSCRIBED if reason == SuppressionReason.UNSUBSCRIBED.value
            else WebhookEvent.RECIPIENT_SUPPRESSED)


def check_selection(selection: object) -> list[str]:
    """An endpoint's ``events``: a non-empty list of types, groups (``message.*``) or ``*``."""
    hint = "Pick from: " + ", ".join(SELECTABLE) + "; or a group (" + ", ".join(f"{g}.*" for g in _GROUPS) + ") or '*'."
    if not isinstance(selection, list) or not selection or len(selection) > MAX_SELECTION:
        raise InputError(f"events must be a list of 1 to {MAX_SELECTION} event types.", code="webhook_events_invalid",
                         hint=hint)
    out: list[str] = []
    for item in selection:
        if not isinstance(item, str) or not (item == "*" or item in SELECTABLE
                                             or (item.endswith(".*") and item[:-2] in _GROUPS)):
            shown = item[:60] if isinstance(item, str) else type(item).__name__
            raise InputError(f"{shown!r} is not an event type.", code="webhook_events_invalid", hint=hint)
        if item not in out:
            out.append(item)
    return out


def selects(selection: list[str], event_type: str) -> bool:
    group = event_type.split(".")[0] + ".*"
    return "*" in selection or event_type in selection or group in selection
