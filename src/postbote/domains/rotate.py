"""Key rotation without the tenant touching DNS: both selectors' CNAMEs are already in place, so
the platform publishes the next key under the idle selector, waits until it resolves through the
tenant's CNAME, and only then signs with it. The previous key stays published (retired) until the
rotation after, so mail signed with it and still queued keeps verifying — which is why rotations
are at least MAX_LIFETIME apart."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy import Engine, insert

from ..db.schema import domain_events, utcnow
from ..dns import DnsTemporaryError, Resolver
from ..errors import ConflictError
from ..settings import Settings
from ..vocab import KeyState
from .keys import KeyVault
from .publish import platform_records, publish
from .records import dkim_txt
from .store import Domain, domain_keys, replace_key, set_key_state


async def rotate_key(engine: Engine, resolver: Resolver, settings: Settings, vault: KeyVault, domain: Domain,
                     *, wait: float = 300, poll: float = 2.0) -> dict:
    keys = {k.state: k for k in domain_keys(engine, domain.id)}
    active = keys[KeyState.ACTIVE]
    upcoming = keys.get(KeyState.NEXT)
    if upcoming is None:
        retired = keys[KeyState.RETIRED]
        if active.activated_at and utcnow() - active.activated_at < timedelta(seconds=settings.max_lifetime_seconds):
            raise ConflictError(
                f"{domain.name} was rotated recently; mail signed with the previous key may still be queued.",
                code="rotation_too_soon", hint=f"Rotate again after MAX_LIFETIME ({settings.MAX_LIFETIME}) has passed.")
        replace_key(engine, vault, retired, KeyState.NEXT)
        upcoming = next(k for k in domain_keys(engine, domain.id) if k.state is KeyState.NEXT)
    if settings.DNS_UPDATE_SERVER:
        await asyncio.to_thread(publish, platform_records(engine, settings), settings)
    if not await _resolves(resolver, f"{upcoming.selector}._domainkey.{domain.name}", dkim_txt(upcoming.public_b64), wait, poll):
        raise ConflictError(
            f"The next key ({upcoming.selector}) of {domain.name} does not resolve yet; nothing was switched.",
            code="rotation_waiting",
            hint="Publish the platform zone ('postbote platform publish'), check the tenant's CNAMEs, and try again.")
    set_key_state(engine, upcoming, KeyState.ACTIVE)
    set_key_state(engine, active, KeyState.RETIRED)
    with engine.begin() as conn:
        conn.execute(insert(domain_events).values(domain_id=domain.id, at=utcnow(), kind="key_rotated", old_state=None,
                                                  new_state=None, data={"active": upcoming.selector,
                                                                        "retired": active.selector}))
    return {"domain": domain.name, "active": upcoming.selector, "retired": active.selector}


async def _resolves(resolver: Resolver, name: str, expected: str, wait: float, poll: float) -> bool:
    """Whether ``name`` leads (through its CNAME) to the TXT ``expected``, polling up to ``wait`` s."""
    deadline = time.monotonic() + wait
    while True:
        try:
            target = await resolver.cname(name, fresh=True)
            if target and expected in [" ".join(t.split()) for t in await resolver.txt(target, fresh=True)]:
                return True
        except DnsTemporaryError:
            pass
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(poll)
