"""Making a call: claim it under a lease, find where to connect and check that address, POST the
signed body, write down the attempt, and schedule the next one or finish.

- Order: a call is claimed only when no earlier call about the same subject to the same endpoint
  is still pending, so a message's events reach a receiver in the order they happened, and a call
  that keeps failing holds back the later ones until it succeeds or is parked as dead.
- At least once: the lease outlives the longest call (twice WEBHOOK_TIMEOUT, and a margin); a
  process that dies mid-call leaves the lease to run out, and the next claim makes the call again
  under the same event id, for the receiver to drop if it had it.
- The private-address guard: the host is resolved here, each address checked as delivery checks
  an MX (ALLOW_PRIVATE_WEBHOOKS), and the connection goes to the address that was checked (Host
  and TLS name set to the URL's), so DNS that changes between the check and the connection
  cannot lead the call elsewhere. Redirects are not followed."""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import Engine, and_, insert, or_, select, update

from .. import __version__
from ..db.schema import utcnow, webhook_attempts, webhook_calls, webhook_endpoints
from ..dns import DnsTemporaryError, Resolver
from ..network import not_public
from ..settings import Settings
from .endpoints import signing_secrets
from .sign import headers as signed_headers

log = logging.getLogger("postbote.webhooks")

EXCERPT = 1000  # characters of the receiver's answer kept with an attempt
_CLAIMS = itertools.count(1)
_PROCESS = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


def lease_seconds(settings: Settings) -> float:
    return 2 * settings.WEBHOOK_TIMEOUT + 5


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    endpoint_id: str
    event_id: str
    body: str
    attempts: int
    expires_at: datetime
    url: str
    endpoint: object  # the endpoint row: its sealed secrets
    token: str  # the claim's lease owner


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int | None
    error: str | None
    excerpt: str | None
    duration_ms: int
    started_at: datetime

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def claim(engine: Engine, settings: Settings, *, limit: int = 200) -> list[Claimed]:
    """Due calls, each the earliest pending one of its subject at its endpoint, leased to us."""
    now = utcnow()
    c, e = webhook_calls, webhook_endpoints
    earlier = webhook_calls.alias("earlier")
    blocked = (select(earlier.c.id).where(earlier.c.endpoint_id == c.c.endpoint_id, earlier.c.subject == c.c.subject,
                                          earlier.c.seq < c.c.seq, earlier.c.state == "pending").exists())
    free = or_(c.c.lease_until.is_(None), c.c.lease_until < now)
    due = (select(c.c.id).join(e, e.c.id == c.c.endpoint_id)
           .where(c.c.state == "pending", c.c.next_attempt_at <= now, free, e.c.enabled.is_(True), ~blocked)
           .order_by(c.c.next_attempt_at, c.c.id).limit(limit))
    token = f"{_PROCESS}:{next(_CLAIMS)}"
    with engine.begin() as conn:
        ids = list(conn.execute(due).scalars())
        if not ids:
            return []
        conn.execute(update(c).where(c.c.id.in_(ids), c.c.state == "pending", free)
                     .values(lease_owner=token, lease_until=now + timedelta(seconds=lease_seconds(settings))))
        rows = conn.execute(select(c.c.id, c.c.endpoint_id, c.c.event_id, c.c.body, c.c.attempts, c.c.expires_at,
                                   e.c.url, e.c.secret, e.c.previous_secret, e.c.previous_until)
                            .join(e, e.c.id == c.c.endpoint_id).where(c.c.lease_owner == token)
                            .order_by(c.c.id)).all()
    return [Claimed(r.id, r.endpoint_id, r.event_id, r.body, r.attempts, r.expires_at, r.url, r, token) for r in rows]


async def _addresses(host: str, resolver: Resolver) -> list[str]:
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        return await resolver.addresses(host)


async def target(url: str, settings: Settings, resolver: Resolver) -> tuple[str, str] | str:
    """(URL to connect to, host name) with the host replaced by a checked address; or why not."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        found = await _addresses(host, resolver)
    except DnsTemporaryError as exc:
        return f"DNS: {exc}"
    if not found:
        return f"{host} has no address in DNS"
    allowed = found if settings.ALLOW_PRIVATE_WEBHOOKS else [ip for ip in found if not not_public(ip)]
    if not allowed:
        return (f"refused: {host} resolves to {', '.join(found[:4])}, not a public address "
                "(webhooks are called only at public addresses; ALLOW_PRIVATE_WEBHOOKS is off)")
    ip = allowed[0]
    netloc = f"[{ip}]" if ":" in ip else ip
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host


async def make(call: Claimed, settings: Settings, resolver: Resolver, client: httpx.AsyncClient) -> Outcome:
    """One attempt of a call. Never raises: whatever went wrong is the attempt's error."""
    started = utcnow()
    began = time.monotonic()

    def done(status: int | None, error: str | None, excerpt: str | None = None) -> Outcome:
        return Outcome(status, error, excerpt, int((time.monotonic() - began) * 1000), started)

    try:
        where = await asyncio.wait_for(target(call.url, settings, resolver), settings.WEBHOOK_TIMEOUT)
    except asyncio.TimeoutError:
        return done(None, "DNS lookup timed out")
    if isinstance(where, str):
        return done(None, where)
    address, host = where
    now = int(time.time())
    try:
        secrets_ = signing_secrets(settings, call.endpoint, started)
    except Exception as exc:  # a secret sealed under another SECRET_KEY: the attempt says so
        return done(None, str(exc)[:300])
    parts = urlsplit(call.url)
    headers = {"content-type": "application/json", "user-agent": f"Postbote/{__version__} (webhooks)",
               "host": parts.netloc.rsplit("@", 1)[-1], **signed_headers(secrets_, call.event_id, now, call.body)}
    request = client.build_request("POST", address, content=call.body.encode("utf-8"), headers=headers,
                                   extensions={"sni_hostname": host} if parts.scheme == "https" else {})
    try:
        async with asyncio.timeout(settings.WEBHOOK_TIMEOUT):
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                chunk = b""
                async for piece in response.aiter_raw():
                    chunk += piece
                    if len(chunk) >= EXCERPT:
                        break
            finally:
                await response.aclose()
    except TimeoutError:
        return done(None, f"no answer within {settings.WEBHOOK_TIMEOUT:g} s")
    except httpx.HTTPError as exc:
        return done(None, f"{exc.__class__.__name__}: {str(exc)[:300] or 'connection failed'}")
    excerpt = chunk[:EXCERPT].decode("utf-8", "replace")
    status = response.status_code
    error = None
    if 300 <= status < 400:
        error = f"redirect to {response.headers.get('location', '?')[:200]} not followed"
    elif not 200 <= status < 300:
        error = f"HTTP {status}"
    return done(status, error, excerpt)


def record(engine: Engine, settings: Settings, done: list[tuple[Claimed, Outcome]]) -> list[str]:
    """Write each call's attempt and next state (delivered, pending again, or dead), all in one
    transaction; returns the states."""
    now = utcnow()
    states, attempts_rows = [], []
    with engine.begin() as conn:
        for call, outcome in done:
            values = _next(settings, call, outcome, now)
            attempts_rows.append({"call_id": call.id, "started_at": outcome.started_at, "duration_ms": outcome.duration_ms,
                                  "status": outcome.status, "error": outcome.error,
                                  "response_excerpt": outcome.excerpt})
            conn.execute(update(webhook_calls).where(and_(webhook_calls.c.id == call.id,
                                                          webhook_calls.c.lease_owner == call.token)).values(**values))
            states.append(values["state"])
            if not outcome.ok:
                log.info("webhook %s to %s: %s (%s)", call.event_id, call.endpoint_id, outcome.error, values["state"])
        if attempts_rows:
            conn.execute(insert(webhook_attempts), attempts_rows)
    return states


def _next(settings: Settings, call: Claimed, outcome: Outcome, now: datetime) -> dict:
    attempts = call.attempts + 1
    values: dict = {"attempts": attempts, "lease_owner": None, "lease_until": None, "last_status": outcome.status,
                    "last_error": outcome.error}
    if outcome.ok:
        values.update(state="delivered", finished_at=now)
        return values
    steps = settings.webhook_retry_steps
    later = now + timedelta(seconds=steps[min(attempts, len(steps)) - 1])
    if now >= call.expires_at:
        values.update(state="dead", finished_at=now)
    else:  # the last try falls at the end of the call's age, not after it
        values.update(state="pending", next_attempt_at=min(later, call.expires_at))
    return values
