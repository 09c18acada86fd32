"""Step 2, the sender: its verdict now, when the step is saved. At send time the same choice is
made again by ``domains.choose_sender`` (through ``sending.send``), so a domain that broke in
between never sends unauthenticated mail in the tenant's name."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import formataddr
from typing import Any

from sqlalchemy import Engine

from ..dns import Resolver
from ..domains import find_domain, verify_domain
from ..errors import InputError
from ..settings import Settings
from ..vocab import DomainState, SenderPolicy
from .definition import SenderSpec


@dataclass(frozen=True, slots=True)
class SenderVerdict:
    address: str  # the From the action asks for
    mode: str  # own_domain | default_sender | held
    state: str | None  # the domain's state now (None: the default sender)
    verdict: str  # one sentence for the admin
    missing: list[str] = field(default_factory=list)  # records still to publish, as "name TYPE value"

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "mode": self.mode, "domain_state": self.state, "verdict": self.verdict,
                "missing_records": self.missing}


def sender_address(spec: SenderSpec, settings: Settings) -> str:
    """The From an action asks for, as "Name <address>" (the name may be empty)."""
    address = f"{spec.local_part}@{spec.domain}" if spec.domain else settings.default_sender
    return formataddr((spec.display_name, address)) if spec.display_name else address


async def sender_verdict(engine: Engine, resolver: Resolver, settings: Settings, *, tenant_id: int,
                         tenant_name: str, policy: SenderPolicy, spec: SenderSpec) -> SenderVerdict:
    """Looks at the domain in DNS now (and records the check, as ``domain verify`` does)."""
    address = sender_address(spec, settings)
    if spec.domain is None:
        return SenderVerdict(address, "default_sender", None,
                             f"default sender: from {settings.default_sender} as "
                             f"\"{tenant_name} via {settings.PLATFORM_NAME}\" (the platform's sender always names "
                             f"the tenant), "
                             f"signed as {settings.PLATFORM_DOMAIN}")
    domain = find_domain(engine, spec.domain, tenant_id=tenant_id)
    if domain is None or domain.tenant_id != tenant_id:
        # Another tenant's domain answers exactly like a domain nobody added: its owner stays unknown.
        raise InputError(f"{spec.domain} is not one of your sender domains.", code="sender_domain_unknown",
                         hint="Add it with POST /v1/domains (or 'postbote domain add'), or leave domain empty "
                              "for the default sender.")
    checked = await verify_domain(engine, resolver, settings, domain)
    if checked.state is DomainState.VERIFIED:
        return SenderVerdict(address, "own_domain", checked.state.value,
                             f"verified — signed as {domain.name}, aligned for DMARC")
    missing = list(checked.missing)
    why = "the CNAMEs are not published" if checked.state is DomainState.PENDING else \
        f"the domain is {checked.state.value}: a record is missing or points elsewhere"
    if policy is SenderPolicy.HOLD:
        return SenderVerdict(address, "held", checked.state.value,
                             f"{checked.state.value}: {why}; mail will be held until the domain is verified", missing)
    return SenderVerdict(address, "default_sender", checked.state.value,
                         f"{checked.state.value}: {why}; mail will go from the default sender "
                         f"({settings.default_sender}) with Reply-To {spec.local_part}@{domain.name}", missing)
