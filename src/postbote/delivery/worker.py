"""The delivery worker: claim due deliveries, hand them to their destinations, write the outcomes
back. Claims and writes run on one database thread so the event loop keeps talking SMTP while the
store works; outcomes are written in batches, and a delivery counts as in flight until its
outcome is stored, so a worker never holds more than MAX_INFLIGHT claims.

Crash safety comes from the queue, not from here: whatever this process held when it died is
leased, and the leases run out."""

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
from datetime import datetime

from sqlalchemy import Engine

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
)
from ..replies import Reply
from ..settings import Settings
from .connection import Connector
from .destination import Destination
from .job import Job, Route, outcome_updates
from .retry import RetryPolicy
from .source_ip import pick_source_ip
from .transcript import Transcript

log = logging.getLogger("postbote.delivery")

_FLUSH_EVERY = 0.05  # seconds between outcome writes
_IDLE_POLL = 1.0  # longest sleep when nothing is due


@dataclass(slots=True)
class WorkerStats:
    outcomes: Counter = field(default_factory=Counter)
    claimed: int = 0
    seconds: float = 0.0


def new_owner() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    def __init__(self, settings: Settings, engine: Engine, resolver: Resolver, *, owner: str | None = None):
        self.settings = settings
        self.engine = engine
        self.resolver = resolver
        self.owner = owner or new_owner()
        self.connector = Connector(settings, resolver)
        self.policy = RetryPolicy(settings.retry_steps, settings.RETRY_JITTER)
        # Do not start an attempt in the last part of a lease (an attempt may take this long).
        self.lease_margin = min(settings.lease_seconds / 4, 4 * settings.SMTP_TIMEOUT)
        self.stopping = False
        self.stats = WorkerStats()
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postbote-db")
        self._destinations: dict[tuple[str, str | None], Destination] = {}
        self._paused: dict[tuple[str, str | None], tuple[datetime, str]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._inflight = 0
        self._updates: list[DeliveryUpdate] = []
        self._wake = asyncio.Event()

    # Called by destinations.

    def spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def report(self, job: Job, replies: dict[str, Reply], started: datetime, route: Route, transcript: Transcript) -> None:
        self._updates.extend(
            outcome_updates(job, replies, started_at=started, route=route, transcript=transcript, policy=self.policy)
        )

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
        self._inflight -= len(job.deliveries)
        self._wake.set()

    # The loop.

    async def run(self, *, until_done: bool = False, timeout: float | None = None,
                  stop: asyncio.Event | None = None) -> WorkerStats:
        began = time.monotonic()
        deadline = began + timeout if timeout else None
        flusher = asyncio.create_task(self._flush_loop())
        try:
            while not (stop and stop.is_set()):
                if deadline and time.monotonic() >= deadline:
                    break
                claimed = await self._claim()
                if claimed:
                    continue
                if until_done and self._inflight == 0 and not self._updates:
                    if await self._db_call(pending_count, self.engine) == 0:
                        break
                await self._idle(deadline, stop)
        finally:
            await self._shutdown(flusher)
            self.stats.seconds = time.monotonic() - began
        return self.stats

    async def _claim(self) -> int:
        room = self.settings.MAX_INFLIGHT - self._inflight
        if room < max(1, self.settings.MAX_INFLIGHT // 4):
            return 0
        claimed = await self._db_call(
            claim_due, self.engine, owner=self.owner, limit=room,
            lease_seconds=self.settings.lease_seconds, now=utcnow(),
        )
        if not claimed:
            return 0
        self._inflight += len(claimed)
        self.stats.claimed += len(claimed)
        message_ids = {d.message_id for d in claimed}
        queued = await self._db_call(load_messages, self.engine, message_ids)
        copies = await self._db_call(load_copies, self.engine, claimed)
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
        if self._inflight == 0:
            due = await self._db_call(next_due_at, self.engine)
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

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_EVERY)
            await self._flush()

    async def _flush(self) -> None:
        if not self._updates:
            return
        batch, self._updates = self._updates, []
        try:
            await self._db_call(record_outcomes, self.engine, self.owner, batch)
        except Exception:
            # The store is unreachable: keep the outcomes and try again; the leases protect them.
            log.exception("recording %d outcomes failed; will retry", len(batch))
            self._updates = batch + self._updates
            await asyncio.sleep(1)
            return
        self._inflight -= len(batch)
        self.stats.outcomes.update(u.state.value for u in batch)
        self._wake.set()

    async def _shutdown(self, flusher: asyncio.Task) -> None:
        self.stopping = True
        unsent = [job for d in self._destinations.values() for job in d.drain()]
        ids = [d.id for job in unsent for d in job.deliveries]
        self._inflight -= len(ids)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.settings.SMTP_TIMEOUT)
        flusher.cancel()
        await self._flush()
        await self._db_call(release, self.engine, owner=self.owner, ids=ids)
        self._db.shutdown(wait=True)

    async def _db_call(self, fn, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, lambda: fn(*args, **kwargs))
