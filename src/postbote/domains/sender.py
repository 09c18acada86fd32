"""The sender choice of workflow step 2, made again at send time.

A message from a verified domain of the tenant's own goes out as asked: From the tenant's
address, DKIM-signed with the tenant's key (d=acme.com), envelope sender on the tenant's return
path (bounces+ID.DAY.MAC@pbmail.acme.com) — SPF and DKIM both align with From for DMARC. Anything else —
a domain not verified (yet), another tenant's domain, a domain nobody registered — is never sent
in that domain's name: the tenant's policy either falls back to the platform's default sender
("ACME GmbH via Platform" <notification@…>, Reply-To the address asked for, signed and bounced
by the platform) or holds the message. The message records which sender was used and why."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from ..compose import Mailbox
from ..settings import Settings
from ..vocab import DomainState, SenderPolicy
from .records import return_path_host
from .store import DkimKey, Domain, active_key, find_domain


@dataclass(frozen=True, slots=True)
class SenderDecision:
    sender: Mailbox  # the From used
    reply_to: Mailbox | None
    envelope_host: str  # the return-path host; the envelope sender is bounces+ID.DAY.MAC@ this (returnpath.py)
    dkim_domain: str
    key: DkimKey | None  # None when the message is held
    note: str | None  # why the sender differs from the one asked for
    held: bool = False


def choose_sender(engine: Engine, settings: Settings, *, tenant_id: int, tenant_name: str, policy: SenderPolicy,
                  requested: Mailbox, reply_to: Mailbox | None, domain: Domain | None = None) -> SenderDecision:
    """``domain``: a freshly verified record of the requested domain, when the caller has one."""
    default = Mailbox(settings.default_sender.lower(), "")
    if requested.address.lower() == default.address:
        # The display name is the tenant's registered one, never what the request says: the
        # platform signs this From, so a free name would let any tenant pose as any company.
        name = f"{tenant_name} via {settings.PLATFORM_NAME}"
        note = (f"the display name {requested.display_name!r} was replaced by the tenant's registered name"
                if requested.display_name and requested.display_name != name else None)
        return _platform(engine, settings, Mailbox(default.address, name), reply_to, note)
    domain = domain or find_domain(engine, requested.domain, tenant_id=tenant_id)
    if domain is not None and domain.tenant_id == tenant_id and domain.state is DomainState.VERIFIED:
        return SenderDecision(requested, reply_to, return_path_host(domain.name), domain.name,
                              active_key(engine, domain.id), None)
    if domain is not None and domain.tenant_id == tenant_id:
        note = f"{requested.domain} is not verified ({domain.state.value}): its DNS records are not all in place"
    else:
        note = f"{requested.domain} is not a verified sender domain of this tenant"
    if policy is SenderPolicy.HOLD:
        return SenderDecision(requested, reply_to, "", requested.domain, None, note + "; held by the tenant's policy",
                              held=True)
    fallback = Mailbox(default.address, f"{tenant_name} via {settings.PLATFORM_NAME}")
    return _platform(engine, settings, fallback, reply_to or requested,
                     note + f"; sent from the default sender with Reply-To {requested.address}")


def _platform(engine: Engine, settings: Settings, sender: Mailbox, reply_to: Mailbox | None, note: str | None) -> SenderDecision:
    return SenderDecision(sender, reply_to, settings.return_path_host, settings.PLATFORM_DOMAIN,
                          active_key(engine, None), note)
