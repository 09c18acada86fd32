"""A destination is one recipient domain as seen from one source IP. It owns the jobs waiting for
that domain and up to MAX_CONNECTIONS_PER_DOMAIN sender tasks; each sender opens one SMTP
connection and carries job after job over it, lingering a moment for more before it quits."""

from __future__ import annotations

import asyncio
import collections
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from ..db.schema import utcnow
from ..dns import DnsTemporaryError, MxLookup
from ..replies import Reply, classify
from ..vocab import ReplyCategory
from .connection import Connection, ConnectFailure
from .job import Job, Route, same_reply
from .transaction import too_many_recipients, transact
from .transcript import Transcript

if TYPE_CHECKING:
    from .worker import Worker

log = logging.getLogger("postbote.delivery")

_LINGER = 1.0  # seconds an idle connection waits for the next job before QUIT


class Destination:
    def __init__(self, worker: "Worker", domain: str, source_ip: str | None):
        self.worker = worker
        self.domain = domain
        self.source_ip = source_ip
        self.jobs: collections.deque[Job] = collections.deque()
        self.senders = 0
        self._more = asyncio.Event()

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.domain, self.source_ip)

    def put(self, job: Job) -> None:
        pause = self.worker.pause_of(self.key)
        if pause is not None:
            self._defer_paused(job, *pause)
            return
        self.jobs.append(job)
        self._more.set()
        if self.senders < self.worker.settings.MAX_CONNECTIONS_PER_DOMAIN and self.senders < len(self.jobs):
            self.senders += 1
            self.worker.spawn(self._sender())

    def drain(self) -> list[Job]:
        """Take back the jobs nobody has started; lingering senders notice and quit."""
        taken = list(self.jobs)
        self.jobs.clear()
        self._more.set()
        return taken

    async def _sender(self) -> None:
        conn: Connection | None = None
        failed = False
        try:
            mx = await self._lookup()
            if mx is None:
                return
            while True:
                job = await self._next_job()
                if job is None:
                    return
                if conn is None or not conn.alive:
                    started = utcnow()
                    opened = await self.worker.connector.open(mx.hosts, self.source_ip)
                    if isinstance(opened, ConnectFailure):
                        self._fail_all(job, opened.reply, opened.transcript, started,
                                       Route(opened.mx_host, opened.mx_ip))
                        return
                    conn = opened
                await self._send(conn, job)
                if self.worker.pause_of(self.key) is not None:
                    return
        except Exception:  # a bug must not strand the jobs: they go back when their lease ends
            log.exception("sender for %s failed", self.domain)
            failed = True
        finally:
            self.senders -= 1
            if conn is not None:
                await conn.close()
            if self.senders == 0 and not self.jobs:
                self.worker.retire(self)
            elif self.senders == 0 and not self.worker.stopping and not failed:
                # Jobs came while this sender was leaving (or it failed): never leave them unsent.
                self.senders += 1
                self.worker.spawn(self._sender())

    async def _next_job(self) -> Job | None:
        while not self.worker.stopping:
            while self.jobs:
                job = self.jobs.popleft()
                # Sending on a lease about to run out could race another worker's claim.
                if utcnow() + timedelta(seconds=self.worker.lease_margin) >= self.worker.lease_expires_at(job):
                    self.worker.forget(job)
                    continue
                return job
            self._more.clear()
            try:
                await asyncio.wait_for(self._more.wait(), _LINGER)
            except asyncio.TimeoutError:
                if not self.jobs:  # a job put in the same instant as the timeout is still taken
                    return None
        return None

    async def _lookup(self) -> MxLookup | None:
        """MX of the domain; when it settles the jobs' fate without a connection, settle them all."""
        started = utcnow()
        try:
            mx = await self.worker.resolver.mx(self.domain)
            if mx.nxdomain:  # the domain existed at acceptance: ask once more, past the cache
                mx = await self.worker.resolver.mx(self.domain, fresh=True)
        except DnsTemporaryError as exc:  # a DNS failure that may pass is never a bounce
            self._fail_all(None, Reply.local(str(exc)), Transcript(), started, Route())
            return None
        if mx.nxdomain:
            self._settle_nxdomain(started)
            return None
        reason, status = None, None
        if mx.null_mx:
            reason, status = f"{self.domain} publishes a null MX (RFC 7505): it accepts no mail", "5.1.10"
        elif mx.no_address:
            reason, status = f"{self.domain} has no MX record and no address (RFC 5321 §5.1)", "5.1.2"
        if reason:
            # A permanent answer in DNS is a bounce with no connection made.
            self._fail_all(None, Reply(code=None, text=reason, enhanced_code=status),
                           Transcript([f"* {reason}"]), started, Route())
            return None
        return mx

    def _settle_nxdomain(self, started) -> None:
        """NXDOMAIN for a domain that existed when the message was accepted. One such answer can
        be a fault of some name server on the way, so the first one defers; a delivery bounces
        only when the next attempt, a retry interval later, gets NXDOMAIN again. The address is
        not suppressed either way: it is the domain that is missing, and every new message to it
        is checked in DNS at acceptance anyway."""
        once = Reply.local(f"the domain {self.domain} does not exist (NXDOMAIN); asking again later before giving up")
        again = Reply.local(f"the domain {self.domain} does not exist (NXDOMAIN), also when asked again "
                            "after a retry interval", "5.1.2")
        for job in self.drain():
            replies = {d.recipient: again if d.last_category == ReplyCategory.HOST_UNKNOWN.value else once
                       for d in job.deliveries}
            self.worker.report(job, replies, started, Route(), Transcript([f"* {replies[job.recipients[0]].text}"]))

    async def _send(self, conn: Connection, job: Job) -> None:
        started = utcnow()
        reused = conn.transactions > 0
        result = await transact(conn, job.message.mail_from, job.recipients, job.message.raw,
                                self.worker.settings.smtp_timeouts)
        route = Route(conn.mx_host, conn.mx_ip, conn.tls, reused)
        written = self.worker.report(job, result.replies, started, route, conn.preamble.extended(result.transcript))
        self._slow_down_if_asked(result.replies.values(), conn.mx_host)
        # The next message goes on this connection only once the store knows how this one went:
        # a crash now can repeat at most this one message per connection, never a backlog.
        await written

    def _slow_down_if_asked(self, replies, mx_host: str) -> None:
        """A receiver that says "too much, too fast" gets nothing more from this worker until the
        wait it asked for (or its category's minimum) is over: the jobs still waiting for it are
        deferred without a connection, instead of each being refused in turn."""
        for reply in replies:
            if reply.code is None or reply.code == 250:
                continue
            if (reply.enhanced_code or "").startswith("4.2."):
                continue  # X.2.x is about one mailbox ("receiving mail too quickly"), not about us
            if too_many_recipients(reply):
                continue  # a limit per transaction (RFC 5321 §4.5.3.1.10), not "too fast"
            meaning = classify(reply, mx_host)
            if meaning.category is ReplyCategory.RATE_LIMITED and meaning.temporary:
                wait = meaning.retry_after if meaning.retry_after is not None else meaning.min_wait
                until = utcnow() + timedelta(seconds=wait)
                self.worker.pause(self.key, until, str(reply))
                for job in self.drain():
                    self._defer_paused(job, until, str(reply))
                return

    def _defer_paused(self, job: Job, until, reason: str) -> None:
        seconds = max(1, int((until - utcnow()).total_seconds()))
        note = f"not attempted: {self.domain} asked to slow down ({reason}); retry in {seconds} seconds"
        self.worker.report(job, same_reply(job, Reply.local(note)), utcnow(), Route(), Transcript([f"* {note}"]))

    def _fail_all(self, first: Job | None, reply: Reply, transcript: Transcript, started, route: Route) -> None:
        """The destination cannot be reached now (or ever): every waiting job gets the same reply."""
        jobs = ([first] if first else []) + self.drain()
        for job in jobs:
            self.worker.report(job, same_reply(job, reply), started, route, transcript)
