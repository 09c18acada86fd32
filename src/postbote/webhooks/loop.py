"""The webhook loop of ``serve`` and ``worker``: dispatch what the logs gained, make the calls
that are due, side by side across subjects, one at a time within one. Any number of loops may
run against one store: dispatch takes turns, and a call is leased to one of them."""

from __future__ import annotations

import asyncio
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


async def run_round(engine: Engine, settings: Settings, resolver: Resolver, client: httpx.AsyncClient) -> int:
    """One round: dispatch, then the calls due now. Returns the calls made."""
    await asyncio.to_thread(dispatch, engine, max_age_seconds=settings.webhook_max_age_seconds)
    calls = await asyncio.to_thread(claim, engine, settings)

    async def one(call) -> None:
        outcome = await make(call, settings, resolver, client)
        await asyncio.to_thread(record, engine, settings, call, outcome)

    await asyncio.gather(*(one(c) for c in calls))
    return len(calls)


def client(settings: Settings) -> httpx.AsyncClient:
    # trust_env off: no proxy from the environment may see or reroute the calls.
    return httpx.AsyncClient(follow_redirects=False, trust_env=False,
                             timeout=httpx.Timeout(settings.WEBHOOK_TIMEOUT),
                             limits=httpx.Limits(max_connections=64, max_keepalive_connections=16))


async def run_webhooks(engine: Engine, settings: Settings, resolver: Resolver, stop: asyncio.Event) -> None:
    async with client(settings) as http:
        while not stop.is_set():
            try:
                made = await run_round(engine, settings, resolver, http)
            except Exception as exc:
                if not store_unreachable(exc):
                    raise
                log.warning("webhooks wait: the store is unreachable")
                made = 0
            if not made:
                try:
                    await asyncio.wait_for(stop.wait(), IDLE)
                except asyncio.TimeoutError:
                    pass
