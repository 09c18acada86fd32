"""The supervisor of the running system: a failed part is restarted with a pause, one that keeps
failing takes the process down with an error, an essential part's end ends the process."""

from __future__ import annotations

import asyncio

import pytest

from postbote.delivery import helo_problem
from postbote.runtime import RuntimeFailure, Supervisor, Task


def run(tasks, **kwargs):
    async def main():
        stop = asyncio.Event()
        supervisor = Supervisor(stop, pauses=(0.01,), **kwargs)
        await asyncio.wait_for(supervisor.run([t(stop) if callable(t) and not isinstance(t, Task) else t
                                                for t in tasks]), 10)
        return supervisor
    return asyncio.run(main())


def test_a_failed_part_is_restarted_and_the_others_keep_running():
    starts = []
    ticks = []

    def flaky(stop):
        async def body():
            starts.append(1)
            if len(starts) < 3:
                raise ConnectionError("lost the line")
            stop.set()
        return Task("flaky part", body)

    def steady(stop):
        async def body():
            while not stop.is_set():
                ticks.append(1)
                await asyncio.sleep(0.005)
        return Task("steady part", body)

    run([flaky, steady])
    assert len(starts) == 3 and ticks  # restarted twice; the other part was never stopped


def test_a_part_that_keeps_failing_takes_the_process_down():
    def broken(stop):
        async def body():
            raise ValueError("a bug")
        return Task("delivery worker", body)

    with pytest.raises(RuntimeFailure, match="The delivery worker failed and was not restarted: a bug"):
        run([broken], max_failures=3)


def test_a_part_that_must_not_stop_ends_the_process_when_it_does():
    def api(stop):
        async def body():
            return None
        return Task("API server", body, restart=False)

    with pytest.raises(RuntimeFailure, match="API server stopped unexpectedly"):
        run([api])


def test_an_essential_part_ending_stops_the_rest_cleanly():
    def done(stop):
        async def body():
            await asyncio.sleep(0.01)
        return Task("delivery worker", body, essential=True)

    def forever(stop):
        async def body():
            await stop.wait()
        return Task("domain re-check", body)

    assert run([done, forever]).failure is None


@pytest.mark.parametrize("name, problem", [
    ("out.platform.test", None),
    ("mail.example.com.", None),
    ("localhost", "it has no domain part"),
    ("mailhost", "it has no domain part"),
    ("box.localdomain", "'.localdomain' is no public top-level domain"),
    ("10.0.0.1", "it is an address, not a name"),
    ("[192.0.2.1]", "it is an address, not a name"),
    ("bad_name.example.com", "it is not a valid host name"),
    ("", "it is empty"),
])
def test_ehlo_names_must_be_fully_qualified(name, problem):
    assert helo_problem(name) == problem
