"""The webhook loop of ``serve`` and ``worker``: dispatch what the logs gained, make the calls
that are due, side by side across subjects, one at a time within one. Any number of loops may
run against one store: dispatch takes turns, and a call is leased to one of them."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx
from sqlalchemy import Engine

from ..delivery import store_unreachable
from ..dns import Resolver
from ..settings import Settings
from .call import claim, make, record
from .dispatch import dispatch

log = logging.getLogger("postbote.webhooks")

IDLE = 0.5  # seconds between rounds that found nothing to do
# Lanes of calls, each with its own HTTP client making one call at a time. One client shared by
# many concurrent calls is slower than a single lane (measured against a local receiver: 32 in
# flight through one pool 113 calls/s, one at a time 343/s, 16 lanes of their own 520/s).
LANES = 16
DISPATCH_EVERY = 0.2  # seconds: how often a busy loop turns new log lines into calls


def client(settings: Settings) -> httpx.AsyncClient:
    # trust_env off: no proxy from the environment may see or reroute the calls.
    return httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=httpx.Timeout(settings.WEBHOOK_TIMEOUT),
                             limits=httpx.Limits(max_connections=8, max_keepalive_connections=8))


async def run_webhooks(engine: Engine, settings: Settings, resolver: Resolver, stop: asyncio.Event) -> None:
    """Until ``stop``: dispatch, and keep the lanes busy with due calls. A lane that is free takes
    another call without waiting for the others, so a slow receiver holds up only its own lane
    (a call in flight stays leased and pending, so no other claim takes it or a later call of its
    subject). Outcomes are written in groups by one recorder; a lane is free again once its call
    is answered, its record still to be written."""
    async with contextlib.AsyncExitStack() as stack:
        free: list[httpx.AsyncClient] = [await stack.enter_async_context(client(settings)) for _ in range(LANES)]
        changed = asyncio.Event()
        running: set[asyncio.Task] = set()
        answered: list = []
        have_answers = asyncio.Event()

        async def one(call, lane: httpx.AsyncClient) -> None:
            try:
                answered.append((call, await make(call, settings, resolver, lane)))
                have_answers.set()
            finally:
                free.append(lane)
                changed.set()

        async def recorder() -> None:
            while True:
                await have_answers.wait()
                have_answers.clear()
                batch, answered[:] = list(answered), []
                try:
                    await asyncio.to_thread(record, engine, settings, batch)
                except Exception as exc:  # their leases run out and the calls are made again
                    log.warning("%d webhook call(s) not recorded (%s); they will be made again", len(batch),
                                exc.__class__.__name__)
                changed.set()

        writing = asyncio.create_task(recorder())
        last_dispatch = 0.0
        try:
            while not stop.is_set():
                changed.clear()
                started = 0
                try:
                    now = asyncio.get_running_loop().time()
                    if now - last_dispatch >= DISPATCH_EVERY or not running:
                        await asyncio.to_thread(dispatch, engine, max_age_seconds=settings.webhook_max_age_seconds)
                        last_dispatch = now
                    if len(free) >= max(1, LANES // 4) or (free and not running):
                        for call in await asyncio.to_thread(claim, engine, settings, limit=len(free)):
                            task = asyncio.create_task(one(call, free.pop()))
                            running.add(task)
                            task.add_done_callback(running.discard)
                            started += 1
                except Exception as exc:
                    if not store_unreachable(exc):
                        raise
                    log.warning("webhooks wait: the store is unreachable")
                if not started:  # nothing new: wait for a lane to free up, an answer written, or the stop
                    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(changed.wait())]
                    await asyncio.wait(waits, timeout=IDLE, return_when=asyncio.FIRST_COMPLETED)
                    for w in waits:
                        w.cancel()
        finally:
            if running:  # let calls in flight finish (each is bounded by its timeout) and be written
                await asyncio.wait(running, timeout=settings.WEBHOOK_TIMEOUT + 5)
            if answered:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(record, engine, settings, list(answered))
            writing.cancel()
