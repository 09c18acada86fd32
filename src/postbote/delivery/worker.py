"""The delivery worker: claim due deliveries, hand them to their destinations, write the outcomes
back. Claims and writes run on one database thread so the event loop keeps talking SMTP while the
store works. Outcomes are written as a group commit: whatever has arrived while the last write
ran goes into the next one, at once.

What a crash can repeat is bounded here. A sender waits until the outcome of one message is in
the store before it puts the next message on the same connection, so at any moment at most one
message per open connection has been accepted by a receiver without the store knowing — that,
and nothing more, is what a worker killed at that moment sends twice. Leases are renewed while
the worker holds them, so a slow session is never taken over by another worker mid-way.

The store may go away (a restart, a network cut). Then claims pause, outcomes stay in memory
(their leases keep the deliveries from anyone else until they run out) and every store call is
retried with a growing pause until it works; the worker itself does not stop."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError

from ..db.schema import utcnow
from ..dns import Resolver
from ..queue import (
    ClaimedDelivery,
    DeliveryUpdate,
    claim_due,
    load_copies,
    load_messages,
    next_due_at,
    pending_count,
    record_outcomes,
    release,
    renew_leases,
)
from ..replies import Reply
from ..settings import Settings
from .connection import Connector
from .destination import Destination
from .helo import check_helo_name
from .job import Job, Route, outcome_updates
from .retry import RetryPolicy
from .source_ip import pick_source_ip
from .transcript import Transcript

log = logging.getLogger("postbote.delivery")

_IDLE_POLL = 1.0  # longest sleep when nothing is due
_SHUTDOWN_WRITE_WAIT = 60.0  # seconds a stopping worker keeps trying to write what it holds
_STORE_PAUSES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # seconds between store retries during an outage


@dataclass(slots=True)
class WorkerStats:
    outcomes: Counter = field(default_factory=Counter)
    claimed: int = 0
    seconds: float = 0.0


def new_owner() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


def store_unreachable(exc: BaseException) -> bool:
    """An error that says the store is away (connection refused, lost, locked), as opposed to a
    statement the store refused — which is a bug, and retrying it would not help."""
    if isinstance(exc, (IntegrityError, ProgrammingError, DataError)):
        return False
    return isinstance(exc, (DBAPIError, OSError))


class Worker:
    def __init__(self, settings: Settings, engine: Engine, resolver: Resolver, *, owner: str | None = None):
        check_helo_name(settings)
        self.settings = settings
        self.engine = engine
        self.resolver = resolver
        self.owner = owner or new_owner()
        self.connector = Connector(settings, resolver)
        self.policy = RetryPolicy(settings.retry_steps, settings.RETRY_JITTER)
        # Do not start an attempt in the last part of a lease: renewals may have stopped (store away).
        self.lease_margin = settings.lease_seconds / 4
        self.stopping = False
        self.stats = WorkerStats()
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postbote-db")
        self._destinations: dict[tuple[str, str | None], Destination] = {}
        self._paused: dict[tuple[str, str | None], tuple[datetime, str]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._held: set[int] = set()  # delivery ids claimed and not yet recorded or released
        self._updates: list[tuple[DeliveryUpdate, asyncio.Future | None]] = []
        self._wake = asyncio.Event()
        self._to_write = asyncio.Event()
        self._renewed_until: datetime | None = None
        self._store_down_since: float | None = None
        self._write_busy = False

    # Called by destinations.

    def spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def report(self, job: Job, replies: dict[str, Reply], started: datetime, route: Route,
               transcript: Transcript) -> asyncio.Future:
        """Queue the job's outcomes for the next write; the future is done once they are stored."""
        written = asyncio.get_running_loop().create_future()
        updates = outcome_updates(job, replies, started_at=started, route=route, transcript=transcript,
                                  policy=self.policy)
        for n, update in enumerate(updates):
            self._updates.append((update, written if n == len(updates) - 1 else None))
        if not updates:
            written.set_result(None)
        self._to_write.set()
        return written

    def lease_expires_at(self, job: Job) -> datetime:
        """When the job's lease ends, counting the renewals since it was claimed."""
        claimed = job.lease_expires_at
        if self._renewed_until is not None and self._renewed_until > claimed:
            return self._renewed_until
        return claimed

    def pause(self, key: tuple[str, str | None], until: datetime, reason: str) -> None:
        self._paused[key] = (until, reason)

    def pause_of(self, key: tuple[str, str | None]) -> tuple[datetime, str] | None:
        """(until, the reply that asked) while a destination asked this worker to slow down."""
        pause = self._paused.get(key)
        if pause is not None and pause[0] <= utcnow():
            del self._paused[key]
            return None
        return pause

    def retire(self, destination: Destination) -> None:
        """An idle destination is dropped, so a worker's memory does not grow with every domain
        it ever sent to; the next job for that domain makes a new one."""
        key = (destination.domain, destination.source_ip)
        if self._destinations.get(key) is destination:
            del self._destinations[key]

    def forget(self, job: Job) -> None:
        """A job whose lease ran out before it was sent: another worker may own it now."""
        self._held.difference_update(d.id for d in job.deliveries)
        self._wake.set()

    @property
    def inflight(self) -> int:
        return len(self._held)

    # The loop.

    async def run(self, *, until_done: bool = False, timeout: float | None = None,
                  stop: asyncio.Event | None = None) -> WorkerStats:
        began = time.monotonic()
        deadline = began + timeout if timeout else None
        helpers = [asyncio.create_task(self._write_loop()), asyncio.create_task(self._renew_loop())]
        try:
            while not (stop and stop.is_set()):
                if deadline and time.monotonic() >= deadline:
                    break
                claimed = await self._claim(stop)
                if claimed:
                    continue
                if until_done and not self._held and not self._updates:
                    if await self._store(pending_count, self.engine, stop=stop) == 0:
                        break
                await self._idle(deadline, stop)
        finally:
            await self._shutdown(helpers)
            self.stats.seconds = time.monotonic() - began
        return self.stats

    async def _claim(self, stop: asyncio.Event | None) -> int:
        room = self.settings.MAX_INFLIGHT - len(self._held)
        if room < max(1, self.settings.MAX_INFLIGHT // 4):
            return 0
        claimed = await self._store(  # "now" is read when the claim runs, also after an outage
            lambda: claim_due(self.engine, owner=self.owner, limit=room,
                              lease_seconds=self.settings.lease_seconds, now=utcnow()),
            stop=stop,
        )
        if not claimed:
            return 0
        self._held.update(d.id for d in claimed)
        self.stats.claimed += len(claimed)
        message_ids = {d.message_id for d in claimed}
        queued = await self._store(load_messages, self.engine, message_ids)
        copies = await self._store(load_copies, self.engine, claimed)
        for job in self._jobs(claimed, queued, copies):
            key = (job.domain, job.source_ip)
            destination = self._destinations.get(key)
            if destination is None:
                destination = self._destinations[key] = Destination(self, job.domain, job.source_ip)
            destination.put(job)
        return len(claimed)

    def _jobs(self, claimed: list[ClaimedDelivery], queued: dict, copies: dict | None = None) -> list[Job]:
        """One job per message and domain — and per recipient where the recipient has a copy of
        its own (it must not share a transaction, nor the bytes, with anyone)."""
        copies = copies or {}
        grouped: dict[tuple[str, str, str | None], list[ClaimedDelivery]] = defaultdict(list)
        for d in claimed:
            own = d.recipient if (d.message_id, d.recipient) in copies else None
            grouped[(d.message_id, d.domain, own)].append(d)
        jobs = []
        for (message_id, domain, own), group in grouped.items():
            kept = next((d.source_ip for d in group if d.source_ip), None)
            source_ip = pick_source_ip(domain, kept, self.settings.SOURCE_IPS)
            message = queued[message_id]
            if own is not None:
                message = replace(message, raw=copies[(message_id, own)])
            jobs.append(Job(message, domain, source_ip, group))
        return jobs

    async def _idle(self, deadline: float | None, stop: asyncio.Event | None) -> None:
        wait = _IDLE_POLL
        if not self._held:
            due = await self._store(next_due_at, self.engine, stop=stop)
            if due is not None:
                wait = min(wait, max(0.01, (due - utcnow()).total_seconds()))
        if deadline:
            wait = min(wait, max(0.0, deadline - time.monotonic()))
        self._wake.clear()
        waiters = [asyncio.ensure_future(self._wake.wait())]
        if stop:
            waiters.append(asyncio.ensure_future(stop.wait()))
        _, pending = await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        for w in pending:
            w.cancel()

    async def _write_loop(self) -> None:
        while True:
            await self._to_write.wait()
            self._to_write.clear()
            await self._write()

    async def _write(self) -> None:
        """One group commit of every outcome waiting; during an outage it keeps them and waits."""
        while self._updates:
            batch, self._updates = self._updates, []
            updates = [u for u, _ in batch]
            self._write_busy = True
            try:
                await self._store(record_outcomes, self.engine, self.owner, updates)
            except BaseException:
                self._updates = batch + self._updates  # not written: kept for the next try
                raise
            finally:
                self._write_busy = False
            self._held.difference_update(u.delivery_id for u in updates)
            self.stats.outcomes.update(u.state.value for u in updates)
            for update in updates:
                _log_outcome(update)
            for _, written in batch:
                if written is not None and not written.done():
                    written.set_result(None)
            self._wake.set()

    async def _renew_loop(self) -> None:
        every = max(0.2, self.settings.lease_seconds / 3)
        while True:
            await asyncio.sleep(every)
            if not self._held:
                continue
            until = utcnow() + timedelta(seconds=self.settings.lease_seconds)
            try:
                await self._db_call(renew_leases, self.engine, owner=self.owner, ids=list(self._held), until=until)
            except Exception as exc:
                if not store_unreachable(exc):
                    raise
                log.warning("renewing %d leases failed (store unreachable); trying again", len(self._held))
                continue
            self._renewed_until = until

    async def _shutdown(self, helpers: list[asyncio.Task]) -> None:
        self.stopping = True
        unsent = [job for d in self._destinations.values() for job in d.drain()]
        ids = [d.id for job in unsent for d in job.deliveries]
        self._held.difference_update(ids)
        if self._tasks:  # sessions under way finish their message, their outcomes get written
            await asyncio.wait(list(self._tasks), timeout=self.settings.smtp_timeouts.longest)
        writer, renewer = helpers
        renewer.cancel()
        # The writer may be waiting out an outage with outcomes in hand: give it a while.
        self._to_write.set()
        give_up = time.monotonic() + min(self.settings.lease_seconds, _SHUTDOWN_WRITE_WAIT)
        while (self._updates or self._write_busy) and time.monotonic() < give_up:
            await asyncio.sleep(0.05)
        writer.cancel()
        await asyncio.gather(writer, renewer, return_exceptions=True)
        if self._updates:
            log.error("%d outcomes could not be written before shutdown; their deliveries are "
                      "attempted again when their leases run out", len(self._updates))
        try:
            await self._db_call(release, self.engine, owner=self.owner, ids=ids)
        except Exception as exc:
            if not store_unreachable(exc):
                raise
            log.warning("giving back %d unsent leases failed; they run out by themselves", len(ids))
        self._db.shutdown(wait=True)

    async def _store(self, fn, *args, stop: asyncio.Event | None = None, **kwargs):
        """A store call that waits out an outage: retried with a growing pause until it works
        (or, given ``stop``, until the worker is asked to stop: then None)."""
        failures = 0
        while True:
            if stop is not None and stop.is_set():
                return None
            try:
                result = await self._db_call(fn, *args, **kwargs)
            except Exception as exc:
                if not store_unreachable(exc):
                    raise
                if self._store_down_since is None:
                    self._store_down_since = time.monotonic()
                    log.warning("the store is unreachable (%s); waiting for it, nothing is lost",
                                " ".join(str(exc).split())[:200])
                await asyncio.sleep(_STORE_PAUSES[min(failures, len(_STORE_PAUSES) - 1)])
                failures += 1
                continue
            if self._store_down_since is not None:
                log.warning("the store is back after %.1f s", time.monotonic() - self._store_down_since)
                self._store_down_since = None
            return result

    async def _db_call(self, fn, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, lambda: fn(*args, **kwargs))


def _log_outcome(u: DeliveryUpdate) -> None:
    """One line per outcome at INFO: what a person tails to see mail move. Every value from
    outside (the reply, the MX name) is flattened and stripped of control characters, so a
    receiver cannot forge log lines."""
    if not log.isEnabledFor(logging.INFO):
        return
    a = u.attempt
    where = f" via {_clean(a.mx_host)}[{a.mx_ip}]" if a.mx_host else ""
    log.info("%s %s to %s%s: %s", u.state.value, u.message_id, _clean(u.recipient), where, _clean(u.reason)[:300])


def _clean(text: str | None) -> str:
    return "".join(c if c.isprintable() else "?" for c in " ".join((text or "").split()))
