"""The queue's guarantees, on SQLite and PostgreSQL: a claim is exclusive, a dead worker's leases
run out and are taken over, and a worker that lost its lease cannot overwrite the newer state."""

from __future__ import annotations

import threading
from datetime import timedelta

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, update

from postbote.compose import Draft, compose
from postbote.db import deliveries, metadata, utcnow
from postbote.queue import AttemptRecord, DeliveryUpdate, Outgoing, claim_due, enqueue_in, pending_count, record_outcomes
from postbote.tenants import add_tenant
from postbote.vocab import DeliveryState


def fill(app, count):
    tenant = add_tenant(app.engine, "acme")
    batch = [Outgoing.plain(compose(Draft("hr@acme.test", [f"u{i}@d{i % 7}.test"], "s", "t"), id_domain="p.test"))
             for i in range(count)]
    with app.engine.begin() as conn:
        enqueue_in(conn, tenant.id, batch, lifetime=3600)


def test_migrations_match_the_schema(make_app):
    app = make_app()
    with app.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_concurrent_claims_never_share_a_delivery(make_app):
    app = make_app()
    fill(app, 600)
    results: dict[str, list[int]] = {}

    def claimer(owner):
        got = []
        while batch := claim_due(app.engine, owner=owner, limit=25, lease_seconds=60, now=utcnow()):
            got.extend(d.id for d in batch)
        results[owner] = got

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [i for ids in results.values() for i in ids]
    assert len(claimed) == 600 and len(set(claimed)) == 600
    assert sum(1 for ids in results.values() if ids) >= 2  # the claimers really competed


def test_expired_lease_is_taken_over_and_the_old_owner_cannot_write(make_app):
    app = make_app()
    fill(app, 3)
    now = utcnow()
    first = claim_due(app.engine, owner="dead", limit=10, lease_seconds=30, now=now)
    assert len(first) == 3
    assert claim_due(app.engine, owner="other", limit=10, lease_seconds=30, now=now + timedelta(seconds=29)) == []
    taken = claim_due(app.engine, owner="other", limit=10, lease_seconds=30, now=now + timedelta(seconds=31))
    assert sorted(d.id for d in taken) == sorted(d.id for d in first)

    def update(owner_claim, state):
        attempt = AttemptRecord(utcnow(), 1, "delivered", 250, None, "OK", None, None, None, "mx", "127.0.0.10", None,
                                False, False, "")
        return DeliveryUpdate(owner_claim.id, owner_claim.message_id, state, utcnow(), None, attempt, "250 OK", utcnow())

    assert record_outcomes(app.engine, "dead", [update(first[0], DeliveryState.BOUNCED)]) == 0
    assert record_outcomes(app.engine, "other", [update(taken[0], DeliveryState.DELIVERED)]) == 1
    with app.engine.connect() as conn:
        row = conn.execute(select(deliveries).where(deliveries.c.id == taken[0].id)).one()
    assert (row.state, row.attempts, row.lease_owner) == ("delivered", 1, None)
    assert pending_count(app.engine) == 2


def test_only_due_deliveries_are_claimed(make_app):
    app = make_app()
    fill(app, 4)
    with app.engine.begin() as conn:
        conn.execute(update(deliveries).where(deliveries.c.id <= 2).values(next_attempt_at=utcnow() + timedelta(hours=1)))
    assert len(claim_due(app.engine, owner="w", limit=10, lease_seconds=30, now=utcnow())) == 2
