"""Process-wide bounds that no single request may exceed: how many DNS queries are in flight at
once (across every event loop of the process — API requests each run their own), and each
tenant's request rate. Leaves: no I/O, nothing of ours imported."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque


class ProcessLimit:
    """At most ``size`` holders at a time in the whole process, waiting in order. Works across
    event loops and threads, where asyncio.Semaphore (bound to one loop) would not."""

    def __init__(self, size: int):
        self.size = size
        self._held = 0
        self.peak = 0  # the most holders seen at once, for operators and tests
        self._lock = threading.Lock()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = deque()

    @property
    def held(self) -> int:
        return self._held

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._held < self.size:
                self._held += 1
                self.peak = max(self.peak, self._held)
                return
            waiter = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            with self._lock:
                try:
                    self._waiters.remove((loop, waiter))
                    handed = False
                except ValueError:
                    handed = True  # the slot was handed over as we were cancelled: pass it on
            if handed:
                self._release()
            raise

    async def __aexit__(self, *exc) -> None:
        self._release()

    def _release(self) -> None:
        with self._lock:
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                try:
                    loop.call_soon_threadsafe(self._hand_over, waiter)
                    return  # the slot goes to the waiter; _held stays
                except RuntimeError:  # that loop has closed
                    continue
            self._held -= 1

    def _hand_over(self, waiter: asyncio.Future) -> None:
        if waiter.cancelled():
            self._release()
        else:
            waiter.set_result(None)


class RateLimiter:
    """A token bucket per key (a tenant): ``rate`` requests a second on average, bursts of
    ``burst``. ``take`` returns 0 when the request may go on, else the seconds to wait."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self._buckets: dict[object, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: object, now: float | None = None) -> float:
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
