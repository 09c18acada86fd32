import random
from datetime import datetime, timedelta, timezone

import pytest

from postbote.delivery import RetryPolicy, decide, pick_source_ip
from postbote.durations import format_duration, parse_duration
from postbote.replies import Reply, classify, retry_after_seconds
from postbote.vocab import DeliveryState

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
LATER = NOW + timedelta(days=4)
POLICY = RetryPolicy((300, 600, 1200), jitter=0)


def test_schedule_steps_and_last_step_repeats():
    assert [POLICY.wait_after(n) for n in (1, 2, 3, 4, 9)] == [300, 600, 1200, 1200, 1200]


def test_jitter_stays_within_its_fraction_and_varies():
    policy = RetryPolicy((1000,), jitter=0.1)
    rng = random.Random(7)
    waits = {policy.wait_after(1, rng=rng) for _ in range(200)}
    assert all(900 <= w <= 1100 for w in waits)
    assert max(waits) - min(waits) > 100


def test_delivered_bounced_deferred_expired():
    assert decide(None, failures=1, now=NOW, created_at=NOW, expires_at=LATER, policy=POLICY).state is DeliveryState.DELIVERED
    permanent = classify(Reply.from_smtp(550, "5.1.1 <a@b.test>: Recipient address rejected: User unknown"))
    assert decide(permanent, failures=1, now=NOW, created_at=NOW, expires_at=LATER, policy=POLICY).state is DeliveryState.BOUNCED
    temporary = classify(Reply.from_smtp(450, "4.2.0 Greylisted"))
    deferred = decide(temporary, failures=2, now=NOW, created_at=NOW, expires_at=LATER, policy=POLICY)
    assert deferred.state is DeliveryState.DEFERRED and deferred.next_attempt_at == NOW + timedelta(seconds=600)
    # The schedule's next step would come after the lifetime: one more attempt at its very end …
    last = decide(temporary, failures=2, now=NOW, created_at=NOW, expires_at=NOW + timedelta(seconds=599), policy=POLICY)
    assert last.state is DeliveryState.DEFERRED and last.next_attempt_at == NOW + timedelta(seconds=599)
    # … and a temporary failure at (or after) the end expires it.
    expired = decide(temporary, failures=3, now=NOW + timedelta(seconds=599), created_at=NOW,
                     expires_at=NOW + timedelta(seconds=599), policy=POLICY)
    assert expired.state is DeliveryState.EXPIRED


def test_reply_named_wait_wins_over_schedule():
    verdict = classify(Reply.from_smtp(451, "4.7.1 Please try again in 90 seconds"))
    assert verdict.temporary and verdict.retry_after == 90
    decision = decide(verdict, failures=1, now=NOW, created_at=NOW, expires_at=LATER, policy=POLICY)
    assert decision.next_attempt_at == NOW + timedelta(seconds=90)


@pytest.mark.parametrize("text, seconds", [
    ("try again in 5 minutes", 300), ("Retry in 30s", 30), ("please try again after 2 hours", 7200),
    ("come back in 10 min", 600), ("Greylisted, see http://x", None), ("try again later", None),
])
def test_retry_after_phrases(text, seconds):
    assert retry_after_seconds(text) == seconds


def test_rate_limits_wait_at_least_their_minimum_and_full_mailboxes_give_up():
    limited = classify(Reply.from_smtp(421, "4.7.0 Error: too many connections from 192.0.2.1"))
    assert limited.min_wait == 900
    decision = decide(limited, failures=1, now=NOW, created_at=NOW, expires_at=LATER, policy=POLICY)
    assert decision.next_attempt_at == NOW + timedelta(seconds=900)  # the schedule alone says 300
    full = classify(Reply.from_smtp(452, "4.2.2 Mailbox full"))
    assert full.temporary and full.give_up_after == 86400
    young = decide(full, failures=3, now=NOW + timedelta(hours=2), created_at=NOW, expires_at=LATER, policy=POLICY)
    last = decide(full, failures=9, now=NOW + timedelta(hours=23, minutes=50), created_at=NOW, expires_at=LATER, policy=POLICY)
    old = decide(full, failures=10, now=NOW + timedelta(hours=24), created_at=NOW, expires_at=LATER, policy=POLICY)
    assert young.state is DeliveryState.DEFERRED and old.state is DeliveryState.EXPIRED
    assert last.state is DeliveryState.DEFERRED and last.next_attempt_at == NOW + timedelta(hours=24)


def test_the_last_attempt_comes_at_the_end_of_the_lifetime_not_before():
    """With the default schedule and 4 days, the step before the end falls ~3¾ h short of it."""
    policy = RetryPolicy(tuple(parse_duration(s) for s in "5m,10m,20m,40m,1h,2h,4h".split(",")), jitter=0)
    busy = classify(Reply.from_smtp(451, "4.3.0 Temporary local problem"))
    now, failures = NOW, 0
    while True:
        failures += 1
        decision = decide(busy, failures=failures, now=now, created_at=NOW, expires_at=LATER, policy=policy)
        if decision.state is DeliveryState.EXPIRED:
            break
        now = decision.next_attempt_at
    assert now == LATER  # the final attempt was made at the end of the 4 days


def test_enhanced_code_is_read_only_at_the_start():
    assert Reply.from_smtp(550, "5.1.1 <x@y>: rejected").enhanced_code == "5.1.1"
    assert Reply.from_smtp(550, "rejected, see 5.1.1 docs").enhanced_code is None


def test_source_ip_is_kept_and_otherwise_stable_per_domain():
    ips = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert pick_source_ip("gmx.test", "192.0.2.3", ips) == "192.0.2.3"
    first = pick_source_ip("gmx.test", None, ips)
    assert all(pick_source_ip("gmx.test", None, ips) == first for _ in range(5))
    assert pick_source_ip("gmx.test", "198.51.100.9", ips) == first  # a retired address is replaced
    assert len({pick_source_ip(f"d{i}.test", None, ips) for i in range(30)}) == 3
    assert pick_source_ip("gmx.test", None, []) is None


@pytest.mark.parametrize("text, seconds", [("90", 90), ("30s", 30), ("5m", 300), ("1h", 3600), ("4d", 345600), ("1.5h", 5400)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_bad_duration_and_formatting():
    with pytest.raises(ValueError, match="30s, 5m"):
        parse_duration("5 weeks")
    assert [format_duration(s) for s in (300, 90, 86400 * 4, 0.5)] == ["5m", "90s", "4d", "0.5s"]
