"""When to try again, and when to stop. Pure.

The schedule comes from RETRY_SCHEDULE (the last step repeats), stretched by ±RETRY_JITTER so
that deliveries deferred together do not all come back in the same second. A reply that names
its own wait ("try again in 300 seconds") is honoured instead. A delivery whose next attempt
would fall after the message's expiry ends ``expired`` with its last reply (RFC 5321 §4.5.4.1:
give up after 4–5 days, not before).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..replies import Verdict
from ..vocab import DeliveryState


_rng = random.Random()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    steps: tuple[float, ...]
    jitter: float = 0.1

    def wait_after(self, failures: int, *, rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``failures``-th temporary failure (1-based)."""
        base = self.steps[min(max(failures, 1), len(self.steps)) - 1]
        return base * (1 + (rng or _rng).uniform(-self.jitter, self.jitter))


@dataclass(frozen=True, slots=True)
class Decision:
    state: DeliveryState
    next_attempt_at: datetime


def decide(
    verdict: Verdict | None,
    *,
    failures: int,
    now: datetime,
    expires_at: datetime,
    policy: RetryPolicy,
) -> Decision:
    """``verdict`` None means the receiver accepted the message. ``failures`` counts this one."""
    if verdict is None:
        return Decision(DeliveryState.DELIVERED, now)
    if not verdict.temporary:
        return Decision(DeliveryState.BOUNCED, now)
    wait = verdict.retry_after if verdict.retry_after is not None else policy.wait_after(failures)
    next_at = now + timedelta(seconds=wait)
    if next_at > expires_at:
        return Decision(DeliveryState.EXPIRED, now)
    return Decision(DeliveryState.DEFERRED, next_at)
