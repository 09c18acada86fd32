"""Accepting a message for sending: compose it, store it, report each recipient's state. The
same path serves the CLI, the API and (later) workflows."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from .compose import Draft, compose
from .queue import enqueue
from .settings import Settings
from .tenants import Tenant
from .vocab import DeliveryState


@dataclass(frozen=True, slots=True)
class Accepted:
    id: str
    message_id_header: str
    recipients: list[tuple[str, DeliveryState]]


def send(engine: Engine, settings: Settings, tenant: Tenant, draft: Draft) -> Accepted:
    message = compose(draft, id_domain=settings.PLATFORM_DOMAIN)
    enqueue(engine, tenant.id, message, lifetime=settings.max_lifetime_seconds)
    return Accepted(
        id=message.id,
        message_id_header=message.message_id_header,
        recipients=[(r.address, DeliveryState.QUEUED) for r in message.recipients],
    )
