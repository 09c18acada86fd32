"""The webhook loop of ``serve`` and ``worker``: dispatch what the logs gained, make the calls
that are due, side by side across subjects, one at a time within one. Any number of loops may
run against one store: dispatch takes turns, and a call is leased to one of them."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import Engine

from ..delivery import store_unreachable
from ..dns import Resolver
from ..settings import Settings
from .call import Lane, claim, make, record
from .dispatch import dispatch

log = logging.getLogger("postbote.webhooks")

IDLE = 0.5  # seconds between rounds that found nothing to do
# Lanes of calls, each making one call at a time over HTTP clients of its own (call.Lane). One
# client shared by many concurrent calls is slower than a single lane (measured against a local
# receiver: 32 in flight through one pool 113 calls/s, one at a time 343/s, 16 lanes 520/s).
LANES = 16
DISPATCH_EVERY = 0.2  # seconds: how often a busy loop turns new log lines into calls


async def run_webhooks(engine: Engine, settings: Settings, resolver: Resolver, stop: asyncio.Event) -> None:
    """Until ``stop``: dispatch, and keep the lanes busy with due calls. A lane that is free takes
    another call without waiting for the others, so a slow receiver holds up only its own lane
    (a call in flight stays leased and pending, so no other claim takes it or a later call of its
    subject). Outcomes are written in groups by one recorder; a lane is free again once its call
    is answered, its record still to be written."""
    lanes = [Lane(settings) for _ in range(LANES)]
    free: list[Lane] = list(lanes)
    try:
        await _run(engine, settings, resolver, stop, free)
    finally:
        for lane in lanes:
            with contextlib.suppress(Exception):
                await lane.aclose()


async def _run(engine: Engine, settings: Settings, resolver: Resolver, stop: asyncio.Event, free: list) -> None:
    changed = asyncio.Event()
    running: set[asyncio.Task] = set()
    answered: list = []
    have_answers = asyncio.Event()

    async def one(call, lane: Lane) -> None:
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
                # Never the end of the loop (nor of the process it runs in): the store away is
                # waited out, anything else logged with its traceback and tried again.
                if store_unreachable(exc):
                    log.warning("webhooks wait: the store is unreachable")
                else:
                    log.exception("webhook dispatch or claim failed; trying again")
                await _pause(stop, IDLE * 4)
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


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass
