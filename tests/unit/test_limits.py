"""The process-wide bounds: DNS queries in flight across event loops, and the tenants' rate."""

import asyncio
import threading

from postbote.limits import ProcessLimit, RateLimiter


def test_the_limit_holds_across_event_loops_in_threads_and_survives_cancellation():
    limit = ProcessLimit(5)
    inside = []
    lock = threading.Lock()
    current = [0]

    async def hold():
        async with limit:
            with lock:
                current[0] += 1
                inside.append(current[0])
            await asyncio.sleep(0.002)
            with lock:
                current[0] -= 1

    async def many():
        tasks = [asyncio.ensure_future(hold()) for _ in range(200)]
        await asyncio.sleep(0.01)
        for task in tasks[150:]:
            task.cancel()  # waiters cancelled in line, or just as their turn comes
        await asyncio.gather(*tasks, return_exceptions=True)

    threads = [threading.Thread(target=asyncio.run, args=(many(),)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert max(inside) <= 5 and len(inside) >= 4 * 150 and limit.peak == 5
    assert limit.held == 0  # every slot came back, cancelled waiters' too


def test_rate_limiter_buckets_are_per_key_and_refill():
    rates = RateLimiter(rate=2, burst=4)
    assert [rates.take("a", now=100.0) for _ in range(4)] == [0.0] * 4
    wait = rates.take("a", now=100.0)
    assert 0.4 < wait <= 0.5 and rates.take("b", now=100.0) == 0.0
    assert rates.take("a", now=100.6) == 0.0
    assert RateLimiter(rate=0, burst=0).take("a") == 0.0  # 0: no limit
