"""Accepting a message for sending: choose the sender (workflow step 2, re-checked now), compose,
DKIM-sign, store, and report each recipient's state. The same path serves the CLI, the API and
(later) workflows.

Signing happens here, once, rather than at each delivery attempt: the queue keeps exactly the
bytes that go on the wire, retries cost no RSA, and the work spreads over the threads and
processes that accept mail instead of the one event loop that delivers it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from functools import lru_cache

from sqlalchemy import Engine

from .compose import Draft, compose, new_message_id, parse_mailbox
from .dns import Resolver
from .domains import choose_sender, ensure_platform_keys, find_domain, sign, verify_domain
from .domains.keys import KeyVault
from .queue import Outgoing, enqueue
from .settings import Settings
from .tenants import Tenant
from .vocab import DeliveryState


@dataclass(frozen=True, slots=True)
class Accepted:
    id: str
    message_id_header: str
    recipients: list[tuple[str, DeliveryState]]
    sender: str
    requested_sender: str
    sender_note: str | None


@lru_cache(maxsize=4)
def vault_for(secret_key: str) -> KeyVault:
    """One vault per master key and process, so parsed private keys are kept between messages."""
    return KeyVault(secret_key)


def send(engine: Engine, settings: Settings, tenant: Tenant, draft: Draft, *, resolver: Resolver | None = None) -> Accepted:
    vault = vault_for(settings.SECRET_KEY)
    ensure_platform_keys(engine, vault)
    requested = parse_mailbox(draft.sender, field="sender")
    reply_to = parse_mailbox(draft.reply_to, field="reply-to") if draft.reply_to else None
    fresh = None
    if resolver is not None and len(draft.recipients) >= settings.BULK_THRESHOLD:
        # Before a bulk send, look at the tenant's domain in DNS now rather than trust the last check.
        domain = find_domain(engine, requested.domain)
        if domain is not None and domain.tenant_id == tenant.id:
            asyncio.run(verify_domain(engine, resolver, settings, domain))
            fresh = find_domain(engine, requested.domain)
    decision = choose_sender(engine, settings, tenant_id=tenant.id, tenant_name=tenant.display_name,
                             policy=tenant.sender_policy, requested=requested, reply_to=reply_to, domain=fresh)
    message_id = new_message_id()
    sender_text = str(decision.sender.header())
    message = compose(replace(draft, sender=sender_text, reply_to=str(decision.reply_to.header()) if decision.reply_to else None),
                      id_domain=settings.PLATFORM_DOMAIN, message_id=message_id)
    if decision.key is not None:
        signed = sign(message.raw, domain=decision.dkim_domain, selector=decision.key.selector,
                      key=vault.open(decision.key.sealed))
        message = replace(message, raw=signed)
    outgoing = Outgoing(
        message,
        mail_from=f"bounces+{message_id}@{decision.envelope_host}" if not decision.held else requested.address,
        requested_from=str(requested.header()),
        sender_note=decision.note,
        dkim_domain=decision.dkim_domain if decision.key else None,
        dkim_selector=decision.key.selector if decision.key else None,
        held=decision.held,
    )
    enqueue(engine, tenant.id, outgoing, lifetime=settings.max_lifetime_seconds)
    state = DeliveryState.HELD if decision.held else DeliveryState.QUEUED
    return Accepted(
        id=message.id,
        message_id_header=message.message_id_header,
        recipients=[(r.address, state) for r in message.recipients],
        sender=sender_text,
        requested_sender=str(requested.header()),
        sender_note=decision.note,
    )
