"""When to try again, and when to stop. Pure.

The schedule comes from RETRY_SCHEDULE (the last step repeats), stretched by ±RETRY_JITTER so
that deliveries deferred together do not all come back in the same second. A reply that names
its own wait ("try again in 300 seconds") is honoured instead. A delivery whose next attempt
would fall after the message's expiry is tried once more at the expiry itself; a temporary
failure then ends it ``expired`` with its last reply (RFC 5321 §4.5.4.1: give up after 4–5
days, not before).

What a reply means comes from its classification (replies/): a category may slow retries down
(``min_wait``: rate limits) or stop them before MAX_LIFETIME (``give_up_after``: a mailbox full
for a day); those choices live in ``replies/rules/categories.toml``, not here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..replies import Classification
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
    reply: Classification | None,
    *,
    failures: int,
    now: datetime,
    created_at: datetime,
    expires_at: datetime,
    policy: RetryPolicy,
) -> Decision:
    """``reply`` None means the receiver accepted the message. ``failures`` counts this one."""
    if reply is None:
        return Decision(DeliveryState.DELIVERED, now)
    if not reply.temporary:
        return Decision(DeliveryState.BOUNCED, now)
    if reply.retry_after is not None:
        wait = reply.retry_after
    else:
        wait = max(policy.wait_after(failures), reply.min_wait)
    # The last attempt is made when the lifetime (or the category's shorter one) ends, not at the
    # last step of the schedule before it: RFC 5321 §4.5.4.1 asks for the full 4–5 days.
    end = expires_at
    if reply.give_up_after is not None:
        end = min(end, created_at + timedelta(seconds=reply.give_up_after))
    if now >= end:
        return Decision(DeliveryState.EXPIRED, now)
    return Decision(DeliveryState.DEFERRED, min(now + timedelta(seconds=wait), end))
