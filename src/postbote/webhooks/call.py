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
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import Engine, and_, insert, or_, select, update

from .. import __version__
from ..db.schema import tenants, utcnow, webhook_attempts, webhook_calls, webhook_endpoints
from ..delivery import store_unreachable
from ..delivery.connection import verified_tls_context
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
    """An attempt takes at most WEBHOOK_TIMEOUT (DNS and HTTP together); the rest of the lease is
    for its outcome to be written."""
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
    suspended = select(tenants.c.id).where(tenants.c.id == e.c.tenant_id, tenants.c.suspended_at.is_not(None)).exists()
    due = (select(c.c.id).join(e, e.c.id == c.c.endpoint_id)
           .where(c.c.state == "pending", c.c.next_attempt_at <= now, free, e.c.enabled.is_(True), ~blocked,
                  ~suspended)  # a suspended tenant's calls wait, like its mail
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


class Lane:
    """One call at a time, over HTTP clients of its own: one per (scheme, address, port, host
    name), so a kept-alive connection checked for one name never carries a call for another that
    shares its address. The least recently used client is closed beyond ``keep``."""

    def __init__(self, settings: Settings, keep: int = 8):
        self._settings, self._keep = settings, keep
        # https: the certificate must chain to a trusted authority (the system's, or TLS_CA_FILE)
        # and name the URL's host — checked against the name, though the connection is to an address
        self._tls = verified_tls_context(settings.TLS_CA_FILE)
        self._clients: OrderedDict[tuple, httpx.AsyncClient] = OrderedDict()

    async def client(self, key: tuple) -> httpx.AsyncClient:
        found = self._clients.pop(key, None)
        if found is None:
            # trust_env off: no proxy from the environment may see or reroute the calls
            found = httpx.AsyncClient(follow_redirects=False, trust_env=False, verify=self._tls,
                                      timeout=httpx.Timeout(self._settings.WEBHOOK_TIMEOUT),
                                      limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
        self._clients[key] = found
        while len(self._clients) > self._keep:
            _, old = self._clients.popitem(last=False)
            await old.aclose()
        return found

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


def _text(value: str | None, limit: int) -> str | None:
    """What a receiver or a library said, safe to store: no NUL (PostgreSQL refuses it), bounded."""
    return None if value is None else value.replace("\x00", "\ufffd")[:limit]


async def make(call: Claimed, settings: Settings, resolver: Resolver, lane: Lane) -> Outcome:
    """One attempt of a call, DNS and HTTP together within WEBHOOK_TIMEOUT. Never raises:
    whatever went wrong is the attempt's error."""
    started = utcnow()
    began = time.monotonic()

    def done(status: int | None, error: str | None, excerpt: str | None = None) -> Outcome:
        return Outcome(status, _text(error, 500), _text(excerpt, EXCERPT), int((time.monotonic() - began) * 1000),
                       started)

    try:
        async with asyncio.timeout(settings.WEBHOOK_TIMEOUT):
            return await _attempt(call, settings, resolver, lane, started, done)
    except TimeoutError:
        return done(None, f"no answer within {settings.WEBHOOK_TIMEOUT:g} s")
    except httpx.HTTPError as exc:
        return done(None, f"{exc.__class__.__name__}: {str(exc)[:300] or 'connection failed'}")
    except Exception as exc:  # a bug or a secret that cannot be opened: the attempt says so, the call goes on
        log.warning("webhook %s: attempt failed: %s", call.event_id, exc.__class__.__name__)
        return done(None, f"{exc.__class__.__name__}: {str(exc)[:300]}")


async def _attempt(call: Claimed, settings: Settings, resolver: Resolver, lane: Lane, started: datetime, done) -> Outcome:
    where = await target(call.url, settings, resolver)
    if isinstance(where, str):
        return done(None, where)
    address, host = where
    secrets_ = signing_secrets(settings, call.endpoint, started)
    parts = urlsplit(call.url)
    headers = {"content-type": "application/json", "user-agent": f"Postbote/{__version__} (webhooks)",
               "host": parts.netloc, **signed_headers(secrets_, call.event_id, int(time.time()), call.body)}
    client = await lane.client((parts.scheme, urlsplit(address).netloc, host))  # address and port, name
    request = client.build_request("POST", address, content=call.body.encode("utf-8"), headers=headers,
                                   extensions={"sni_hostname": host} if parts.scheme == "https" else {})
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        chunk = b""
        async for piece in response.aiter_raw():
            chunk += piece
            if len(chunk) >= EXCERPT:
                break
    finally:
        await response.aclose()
    status = response.status_code
    error = None
    if 300 <= status < 400:
        error = f"redirect to {response.headers.get('location', '?')[:200]} not followed"
    elif not 200 <= status < 300:
        error = f"HTTP {status}"
    return done(status, error, chunk[:EXCERPT].decode("utf-8", "replace"))


def record(engine: Engine, settings: Settings, done: list[tuple[Claimed, Outcome]]) -> list[str | None]:
    """Write each call's attempt and next state (delivered, pending again, or dead); returns the
    states (None: not written — the call was taken over or its endpoint removed meanwhile). All in
    one transaction; should that fail for anything but the store being away, each call is written
    on its own, so one bad call never costs the others their outcome."""
    try:
        return _record(engine, settings, done)
    except Exception as exc:
        if store_unreachable(exc) or len(done) == 1:
            raise
    states: list[str | None] = []
    for one in done:
        try:
            states += _record(engine, settings, [one])
        except Exception as exc:
            if store_unreachable(exc):
                raise
            log.error("webhook %s: its outcome cannot be written (%s)", one[0].event_id, exc.__class__.__name__)
            states.append(None)
    return states


def _record(engine: Engine, settings: Settings, done: list[tuple[Claimed, Outcome]]) -> list[str | None]:
    now = utcnow()
    states: list[str | None] = []
    with engine.begin() as conn:
        for call, outcome in done:
            values = _next(settings, call, outcome, now)
            matched = conn.execute(update(webhook_calls).where(and_(webhook_calls.c.id == call.id,
                                                                    webhook_calls.c.lease_owner == call.token))
                                   .values(**values)).rowcount
            if not matched:  # taken over after its lease ran out, or removed with its endpoint
                states.append(None)
                continue
            conn.execute(insert(webhook_attempts).values(
                call_id=call.id, started_at=outcome.started_at, duration_ms=outcome.duration_ms, status=outcome.status,
                error=outcome.error, response_excerpt=outcome.excerpt))
            states.append(values["state"])
            if not outcome.ok:
                log.info("webhook %s to %s: %s (%s)", call.event_id, call.endpoint_id, outcome.error, values["state"])
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
