"""The running system: ``serve`` (REST API, delivery, bounce receiver, domain re-checks, delayed
workflow mail, webhook calls) and ``worker`` (the same but the API and the bounce receiver, so
that workers on several hosts need no ``serve``).

Each long-running part is a supervised task. A task that fails is logged with its traceback and
started again after a growing pause; one that keeps failing, or one that cannot be restarted
(the API), takes the whole process down with a non-zero exit — never does a part stop silently
while the rest carries on. Store outages are not failures: the delivery worker waits them out
itself and keeps the outcomes it has not written yet (see ``delivery/worker.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .app import App
from .delivery import WorkerStats, check_helo_name, store_unreachable
from .errors import ConfigError, PostboteError

log = logging.getLogger("postbote.runtime")

RESTART_PAUSES = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds before the 1st, 2nd … restart
MAX_FAILURES = 5  # failures in a row (each within HEALTHY_AFTER of its start) before giving up
HEALTHY_AFTER = 60.0  # a task that ran this long before failing starts its count afresh


class RuntimeFailure(PostboteError):
    code = "runtime_failed"
    hint = "Read the traceback logged above; the process stopped rather than run without that part."


@dataclass
class Task:
    """One supervised part. ``essential``: when it ends by itself, the process ends (a worker run
    with --until-done). ``restart``: a failure is retried; otherwise it ends the process."""

    name: str
    run: Callable[[], Awaitable[object]]
    essential: bool = False
    restart: bool = True
    failures: int = 0


@dataclass
class Supervisor:
    stop: asyncio.Event
    pauses: tuple[float, ...] = RESTART_PAUSES
    max_failures: int = MAX_FAILURES
    failure: str | None = None
    _tasks: list[asyncio.Task] = field(default_factory=list)

    async def run(self, tasks: list[Task]) -> None:
        """Run every task until ``stop`` is set (by a signal, an essential task's end, or a
        failure); raises RuntimeFailure when a task brought the process down."""
        self._tasks = [asyncio.create_task(self._keep(t), name=t.name) for t in tasks]
        await asyncio.gather(*self._tasks)
        if self.failure:
            raise RuntimeFailure(self.failure)

    async def _keep(self, task: Task) -> None:
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                await task.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if time.monotonic() - began >= HEALTHY_AFTER:
                    task.failures = 0
                task.failures += 1
                if not task.restart or task.failures >= self.max_failures:
                    log.critical("%s failed (%d time(s)); stopping the process", task.name, task.failures,
                                 exc_info=True)
                    self.failure = f"The {task.name} failed and was not restarted: {_one_line(exc)}."
                    self.stop.set()
                    return
                pause = self.pauses[min(task.failures, len(self.pauses)) - 1]
                log.error("%s failed; restarting it in %.0f s", task.name, pause, exc_info=True)
                await self._sleep(pause)
                continue
            if self.stop.is_set():
                return
            if task.essential:
                self.stop.set()
                return
            if not task.restart:
                log.critical("%s stopped by itself; stopping the process", task.name)
                self.failure = f"The {task.name} stopped unexpectedly."
                self.stop.set()
                return
            log.error("%s ended by itself; starting it again", task.name)
            await self._sleep(self.pauses[0])

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return text[:300]


# The parts.


def delivery_task(app: App, stop: asyncio.Event, stats: WorkerStats, *, until_done: bool = False,
                  timeout: float | None = None) -> Task:
    deadline = time.monotonic() + timeout if timeout else None

    async def deliver() -> None:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        run = await app.worker().run(until_done=until_done, timeout=left, stop=stop)
        stats.claimed += run.claimed
        stats.outcomes.update(run.outcomes)
        stats.seconds += run.seconds

    return Task("delivery worker", deliver, essential=until_done or timeout is not None)


def recheck_task(app: App, stop: asyncio.Event) -> Task:
    """Every sender domain checked in DNS again on the DOMAIN_RECHECK_INTERVAL schedule; one
    failed round is logged and the next comes on time."""
    from .domain_service import recheck_all

    domains_log = logging.getLogger("postbote.domains")

    async def recheck() -> None:
        while not stop.is_set():
            try:
                for name, before, after in await recheck_all(app):
                    if before != after:
                        domains_log.warning("domain %s: %s -> %s", name, before, after)
            except Exception as exc:
                if store_unreachable(exc):  # an outage is no bug: one line, no traceback
                    domains_log.warning("domain re-check skipped, the store is unreachable; next round in %s",
                                        app.settings.DOMAIN_RECHECK_INTERVAL)
                else:
                    domains_log.exception("domain re-check failed; next round in %s",
                                          app.settings.DOMAIN_RECHECK_INTERVAL)
            try:  # held mail older than MAX_LIFETIME expires (holding.expire_held, a plain function)
                from .holding import expire_held

                expired = await asyncio.to_thread(expire_held, app.engine)
                if expired:
                    domains_log.info("%d held recipient(s) expired after MAX_LIFETIME", expired)
            except Exception:
                domains_log.warning("expiring held mail failed; next round in %s", app.settings.DOMAIN_RECHECK_INTERVAL)
            try:
                await asyncio.wait_for(stop.wait(), app.settings.recheck_seconds)
            except asyncio.TimeoutError:
                pass

    return Task("domain re-check", recheck)


def bind_api_socket(host: str, port: int) -> socket.socket:
    """The API's listening socket, bound before anything else starts, so that a taken port is
    one clear error instead of a traceback halfway through start-up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"The API address {host}:{port} is already in use by another process.",
                code="api_port_taken",
                hint="Stop the other process (another 'postbote serve'?), or set API_LISTEN "
                "(POSTBOTE_API_LISTEN) to a free host:port.",
            ) from None
        raise ConfigError(
            f"The API cannot listen on {host}:{port}: {exc.strerror or exc}.",
            code="api_listen_failed",
            hint="Set API_LISTEN (POSTBOTE_API_LISTEN) to an address of this machine, e.g. 127.0.0.1:8025.",
        ) from None
    sock.setblocking(False)
    return sock


def preflight(app: App) -> None:
    """What must hold before a process starts delivering."""
    app.check_store()
    check_helo_name(app.settings)


def stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def configure_logging(level: str) -> None:
    from .logs import configure

    configure(level)  # every line escaped: input cannot forge log lines
    logging.getLogger("alembic").setLevel(logging.WARNING)


def workflow_task(app: App, stop: asyncio.Event) -> Task:
    """Delayed workflow mail and digests that have come due: the same loop under serve and worker,
    so workers on several hosts need no serve (a job is claimed by one loop only)."""
    from .workflows import Deps, send_due_forever

    return Task("delayed workflow mail", lambda: send_due_forever(Deps(app.engine, app.settings, app.resolver), stop))


def webhook_task(app: App, stop: asyncio.Event) -> Task:
    """Webhook calls: dispatched from the logs and made, under serve and worker alike (a call is
    leased to one loop, dispatch takes turns)."""
    from .webhooks import run_webhooks

    return Task("webhook calls", lambda: run_webhooks(app.engine, app.settings, app.resolver, stop))


async def run_worker(app: App, *, until_done: bool = False, timeout: float | None = None) -> WorkerStats:
    """``postbote worker``: delivery, the domain re-checks, delayed workflow mail and webhook calls,
    supervised."""
    stop = stop_on_signals()
    stats = WorkerStats()
    tasks = [delivery_task(app, stop, stats, until_done=until_done, timeout=timeout)]
    if not until_done:  # a run that drains the queue and exits has no schedule to keep
        tasks.append(recheck_task(app, stop))
        tasks.append(workflow_task(app, stop))
        tasks.append(webhook_task(app, stop))
    await Supervisor(stop).run(tasks)
    return stats


async def run_serve(app: App, api_socket: socket.socket, announce: Callable[[str], None]) -> None:
    """``postbote serve``: the API on an already bound socket, delivery, the bounce receiver and
    the domain re-checks in one process."""
    import uvicorn

    from .api import create_api
    from .inbound import start_inbound

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            yield  # SIGTERM and SIGINT set the supervisor's stop event, which stops every part

    stop = stop_on_signals()
    host, port = api_socket.getsockname()[:2]
    server = Server(uvicorn.Config(create_api(app), log_level="warning"))

    async def api() -> None:
        await server.serve(sockets=[api_socket])
        if not stop.is_set():
            raise RuntimeError("the API server stopped by itself")

    async def api_stopper() -> None:
        await stop.wait()
        server.should_exit = True

    inbound = start_inbound(app.settings, app.engine) if app.settings.INBOUND_LISTEN else None
    announce(f"Postbote API on http://{host}:{port} (docs at /docs); delivering.")
    if inbound:
        announce(f"Bounce receiver on {app.settings.INBOUND_LISTEN}.")
    stats = WorkerStats()
    try:
        await Supervisor(stop).run([
            Task("API server", api, restart=False),
            Task("API stop", api_stopper, essential=True),
            delivery_task(app, stop, stats),
            recheck_task(app, stop),
            workflow_task(app, stop),
            webhook_task(app, stop),
        ])
    finally:
        server.should_exit = True
        if inbound:
            inbound.stop()
        api_socket.close()


__all__ = [
    "Supervisor", "Task", "RuntimeFailure", "run_worker", "run_serve", "bind_api_socket", "preflight",
    "configure_logging",
]
