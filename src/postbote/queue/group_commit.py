"""Group commit for acceptance: many requests, few transactions.

Each accepted message used to be its own write transaction. On SQLite that means every API
thread queues for the one writer lock (and sleeps in the busy handler while it waits); on
PostgreSQL every request pays a commit round trip. Here one writer thread takes whatever has
arrived since its last commit and stores it all in one transaction; each caller is answered only
once the transaction that carries its message has committed, so the promise of a `202` is the
same as before: the message survives a crash of the process from then on.

No request waits for a timer: while one transaction commits, the next group gathers by itself,
so an idle system answers as fast as before and a busy one writes in large groups. Should a
group fail, its messages are written one by one, so one bad message fails alone.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from ..errors import StoreError

from .enqueue import Outgoing, enqueue_in

__all__ = ["GroupCommit"]

_STOP = object()


@dataclass(slots=True)
class _Pending:
    tenant_id: int
    item: Outgoing
    lifetime: float
    done: Future = field(default_factory=Future)


class GroupCommit:
    """``enqueue(tenant_id, outgoing, lifetime=…)`` blocks until its message is committed and
    returns the acceptance time; ``await enqueue_async(…)`` does the same without blocking a loop.
    ``max_group`` bounds one transaction (and the memory it holds)."""

    def __init__(self, engine: Engine, *, max_group: int = 500, autostart: bool = True):
        self._engine = engine
        self._max_group = max_group
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._autostart = autostart
        self.transactions = 0  # committed groups, for tests and benchmarks
        self.messages = 0

    def submit(self, tenant_id: int, item: Outgoing, *, lifetime: float) -> Future:
        pending = _Pending(tenant_id, item, lifetime)
        with self._lock:
            if self._closed:
                raise RuntimeError("the acceptance writer is closed")
            self._queue.put(pending)
            if self._autostart:
                self._start_locked()
        return pending.done

    def start(self) -> None:
        """Start the writer now (it starts by itself at the first message unless autostart=False)."""
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="postbote-group-commit", daemon=True)
            self._thread.start()

    def enqueue(self, tenant_id: int, item: Outgoing, *, lifetime: float) -> datetime:
        return self.submit(tenant_id, item, lifetime=lifetime).result()

    async def enqueue_async(self, tenant_id: int, item: Outgoing, *, lifetime: float) -> datetime:
        return await asyncio.wrap_future(self.submit(tenant_id, item, lifetime=lifetime))

    def close(self) -> None:
        """Write what was submitted, then stop the writer."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            group, stop = [first], False
            while len(group) < self._max_group:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                group.append(more)
            try:
                self._write(group)
            except BaseException as error:  # never leave a caller waiting for an answer
                for pending in group:
                    if not pending.done.done():
                        pending.done.set_exception(error)
                raise
            if stop:
                return

    def _write(self, group: list[_Pending]) -> None:
        try:
            with self._engine.begin() as conn:
                accepted_at = {}
                for key, members in _by_tenant_and_lifetime(group).items():
                    accepted_at[key] = enqueue_in(conn, key[0], [p.item for p in members], lifetime=key[1])
        except Exception:
            # One message may be what failed the group: write each alone, so only it fails.
            for pending in group:
                self._write_one(pending)
            return
        self.transactions += 1
        self.messages += len(group)
        for pending in group:
            pending.done.set_result(accepted_at[(pending.tenant_id, pending.lifetime)])

    def _write_one(self, pending: _Pending) -> None:
        try:
            with self._engine.begin() as conn:
                at = enqueue_in(conn, pending.tenant_id, [pending.item], lifetime=pending.lifetime)
        except SQLAlchemyError as error:
            failure = StoreError("The message could not be stored; it was not accepted.",
                                 hint="Send it again; if this persists, the store needs the operators' attention.")
            failure.__cause__ = error
            pending.done.set_exception(failure)
            return
        except Exception as error:
            pending.done.set_exception(error)
            return
        self.transactions += 1
        self.messages += 1
        pending.done.set_result(at)


def _by_tenant_and_lifetime(group: list[_Pending]) -> dict[tuple[int, float], list[_Pending]]:
    keyed: dict[tuple[int, float], list[_Pending]] = {}
    for pending in group:
        keyed.setdefault((pending.tenant_id, pending.lifetime), []).append(pending)
    return keyed
