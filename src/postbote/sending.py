"""Accepting a message for sending: choose the sender (workflow step 2, re-checked now), compose,
DKIM-sign, store, and report each recipient's state. The same path serves the CLI, the API and
(later) workflows.

Signing happens here, once, rather than at each delivery attempt: the queue keeps exactly the
bytes that go on the wire, retries cost no RSA, and the work spreads over the threads and
processes that accept mail instead of the one event loop that delivers it."""

from __future__ import annotations

import asyncio

import anyio.from_thread
from dataclasses import dataclass, field, replace
from functools import lru_cache

from sqlalchemy import Engine

from .compose import Draft, Mailbox, check_header_value, compose, new_message_id, parse_mailbox
from .dns import Resolver
from .domains import choose_sender, ensure_platform_keys, find_domain, sign, verify_domain
from .domains.keys import KeyVault
from .domains.returnpath import return_path
from .errors import HeaderInjectionError, InputError, InvalidMessageError, TooLargeError
from .queue import GroupCommit, Outgoing, enqueue
from .recipients import AddressCheck, check_addresses, check_syntax, find_many
from .settings import Settings
from .tenants import Tenant, check_hourly_limit
from .vocab import DeliveryState, MessageClass, SuppressionReason


@dataclass(frozen=True, slots=True)
class Accepted:
    id: str
    message_id_header: str
    recipients: list[tuple[str, DeliveryState]]
    sender: str
    requested_sender: str
    sender_note: str | None
    refused: list[AddressCheck] = field(default_factory=list)  # recipients that did not enter the queue


@lru_cache(maxsize=4)
def vault_for(secret_key: str) -> KeyVault:
    """One vault per master key and process, so parsed private keys are kept between messages."""
    return KeyVault(secret_key)


def check_limits(settings: Settings, draft: Draft) -> None:
    """Size limits, before any work is done for the message (no DNS, no rendering)."""
    if len(draft.recipients) > settings.MAX_RECIPIENTS:
        raise InputError(f"The message has {len(draft.recipients)} recipients; at most {settings.MAX_RECIPIENTS} are allowed.",
                         code="too_many_recipients", hint="Send several messages, or ask the operator about MAX_RECIPIENTS.")
    size = sum(len(part.encode("utf-8", "surrogatepass")) for part in (draft.subject, draft.text, draft.html or ""))
    if size > settings.MAX_MESSAGE_BYTES:
        raise TooLargeError(f"The message is {size} bytes; at most {settings.MAX_MESSAGE_BYTES} are allowed.",
                            hint="Shorten the text or HTML; link to large content instead of including it.")


def check_recipients(engine: Engine, settings: Settings, tenant: Tenant, recipients: list[str],
                     resolver: Resolver, message_class: MessageClass | None = None
                     ) -> tuple[list[tuple[int, str]], list[AddressCheck]]:
    """(the recipients that may be sent to, as (index in ``recipients``, "Name <address>"); the
    refused ones, with why). A line break anywhere refuses the whole message: that is an attack,
    not a typo."""
    if not recipients:
        raise InvalidMessageError("The message has no recipient.", hint="Give at least one 'to'.")
    if len(recipients) > MAX_RECIPIENTS:
        raise InvalidMessageError(f"A message may have at most {MAX_RECIPIENTS} recipients, not {len(recipients)}.",
                                  code="too_many_recipients", hint="Send to more people in several messages.")
    parsed: list[Mailbox | AddressCheck] = []
    for text in recipients:
        try:
            parsed.append(parse_mailbox(text, field="recipient"))
        except HeaderInjectionError:
            raise
        except InputError:
            parsed.append(check_syntax(text, settings))
    addresses = [p.address for p in parsed if isinstance(p, Mailbox)]
    suppressed = find_many(engine, tenant.id, addresses)
    if message_class is MessageClass.TRANSACTIONAL:
        # A bulk unsubscribe stops bulk mail only: the interview invitation still goes out.
        suppressed = {a: s for a, s in suppressed.items() if s.reason != SuppressionReason.UNSUBSCRIBED.value}
    checks = iter(run_coroutine(check_addresses(addresses, settings, resolver, suppressed)) if addresses else [])
    accepted, refused = [], []
    for index, item in enumerate(parsed):
        result = next(checks) if isinstance(item, Mailbox) else item
        if result.ok:
            accepted.append((index, str(Mailbox(result.normalized, item.display_name).header())))
        else:
            refused.append(result)
    if not accepted:
        error = InputError("No recipient of this message can be sent to.", code="recipients_refused",
                           hint="See details: each recipient with its reason and, where likely, the address meant.")
        error.details = [r.to_dict() for r in refused]
        raise error
    return accepted, refused


MAX_RECIPIENTS = 1000  # per message, to, cc and bcc together


def _split_fields(fields: list[list[str]], accepted: list[tuple[int, str]]) -> dict:
    """The accepted recipients back into to, cc and bcc (``accepted``: index in all, normalised)."""
    bounds, start = [], 0
    for f in fields:
        bounds.append((start, start + len(f)))
        start += len(f)
    split = [[text for index, text in accepted if lo <= index < hi] for lo, hi in bounds]
    return {"recipients": split[0], "cc": split[1], "bcc": split[2]}


def _compose_copies(draft: Draft, id_domain: str, message_id: str):
    """The message and, unless the caller asked for a shared To/Cc, one copy per recipient with
    only its own address in To: nobody learns who else got it (for mail to job candidates that
    is a data-protection matter). The message's own bytes then name nobody (undisclosed
    recipients), so that no path could ever send the whole list. One recipient needs no copy."""
    if draft.shared:
        return compose(draft, id_domain=id_domain, message_id=message_id), None
    everyone = [*draft.recipients, *draft.cc, *draft.bcc]
    if len(everyone) == 1:
        return compose(replace(draft, recipients=everyone, cc=[], bcc=[]), id_domain=id_domain,
                       message_id=message_id), None
    message = compose(replace(draft, recipients=[], cc=[], bcc=everyone), id_domain=id_domain, message_id=message_id)
    shown = {parse_mailbox(text, field="recipient").address.lower(): text for text in everyone}
    copies = {r.address: compose(replace(draft, recipients=[shown[r.address.lower()]], cc=[], bcc=[]),
                                 id_domain=id_domain, message_id=message_id).raw
              for r in message.recipients}
    return message, copies


_PLATFORM_KEYS_READY: set[str] = set()  # stores whose platform keys exist: checked once per process


def run_coroutine(coro):
    """Run DNS work from synchronous code: on the server's own event loop when called from one of
    its worker threads (an API handler), so no request pays for a loop of its own; else on a new one."""
    started = []

    async def awaiting():
        started.append(True)
        return await coro

    try:
        return anyio.from_thread.run(awaiting)
    except RuntimeError:
        if started:  # the work itself failed
            raise
    return asyncio.run(coro)  # not in a thread the server's loop lent us (the CLI, a workflow thread)


def send(engine: Engine, settings: Settings, tenant: Tenant, draft: Draft, *, resolver: Resolver | None = None,
         message_class: MessageClass | None = None, acceptor: GroupCommit | None = None,
         message_id: str | None = None) -> Accepted:
    """``message_class`` None: every suppression applies (mail through /v1/messages). With
    ``acceptor`` the store write joins a group commit (the API); without, it is a transaction of
    its own (the CLI). ``message_id``: chosen by the caller beforehand (workflow mail, so that a run
    repeated after a crash can find what the first run accepted); a new one otherwise."""
    check_limits(settings, draft)
    vault = vault_for(settings.SECRET_KEY)
    store = engine.url.render_as_string(hide_password=True)
    if store not in _PLATFORM_KEYS_READY:
        ensure_platform_keys(engine, vault)
        _PLATFORM_KEYS_READY.add(store)
    requested = parse_mailbox(draft.sender, field="sender")
    check_header_value("subject", draft.subject)  # an attack is refused before any DNS is asked
    resolver = resolver or Resolver(settings)
    fields = [list(draft.recipients), list(draft.cc), list(draft.bcc)]
    everyone, refused = check_recipients(engine, settings, tenant, [a for f in fields for a in f], resolver,
                                         message_class)
    draft = replace(draft, **_split_fields(fields, everyone))
    check_hourly_limit(engine, tenant, len(everyone))
    reply_to = parse_mailbox(draft.reply_to, field="reply-to") if draft.reply_to else None
    fresh = None
    if len(everyone) >= settings.BULK_THRESHOLD:
        # Before a bulk send, look at the tenant's domain in DNS now rather than trust the last check.
        domain = find_domain(engine, requested.domain, tenant_id=tenant.id)
        if domain is not None and domain.tenant_id == tenant.id:
            run_coroutine(verify_domain(engine, resolver, settings, domain))
            fresh = find_domain(engine, requested.domain, tenant_id=tenant.id)
    decision = choose_sender(engine, settings, tenant_id=tenant.id, tenant_name=tenant.display_name,
                             policy=tenant.sender_policy, requested=requested, reply_to=reply_to, domain=fresh)
    message_id = message_id or new_message_id()
    sender_text = str(decision.sender.header())
    draft = replace(draft, sender=sender_text, reply_to=str(decision.reply_to.header()) if decision.reply_to else None)
    message, copies = _compose_copies(draft, settings.PLATFORM_DOMAIN, message_id)
    if decision.key is not None:
        key = vault.open(decision.key.sealed)

        def signed(raw: bytes) -> bytes:
            return sign(raw, domain=decision.dkim_domain, selector=decision.key.selector, key=key)

        message = replace(message, raw=signed(message.raw))
        copies = {address: signed(raw) for address, raw in copies.items()} if copies else None
    outgoing = Outgoing(
        message,
        mail_from=(return_path(settings.SECRET_KEY, message_id, decision.envelope_host, valid_days=settings.return_path_days)
                   if not decision.held else requested.address),
        requested_from=str(requested.header()),
        sender_note=decision.note,
        dkim_domain=decision.dkim_domain if decision.key else None,
        dkim_selector=decision.key.selector if decision.key else None,
        held=decision.held,
        copies=copies,
    )
    if acceptor is not None:
        acceptor.enqueue(tenant.id, outgoing, lifetime=settings.max_lifetime_seconds)
    else:
        enqueue(engine, tenant.id, outgoing, lifetime=settings.max_lifetime_seconds)
    state = DeliveryState.HELD if decision.held else DeliveryState.QUEUED
    return Accepted(
        id=message.id,
        message_id_header=message.message_id_header,
        recipients=[(r.address, state) for r in message.recipients],
        sender=sender_text,
        requested_sender=str(requested.header()),
        sender_note=decision.note,
        refused=refused,
    )
