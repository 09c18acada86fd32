"""Group commit at acceptance, on SQLite and PostgreSQL: a caller is answered only after the
transaction carrying its message committed; messages that arrive together share a transaction;
one bad message in a group fails alone."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import create_engine, func, select

from postbote.compose import Draft, compose
from postbote.db import messages
from postbote.errors import StoreError
from postbote.queue import GroupCommit, Outgoing
from postbote.tenants import add_tenant


def outgoing(n: int) -> Outgoing:
    return Outgoing.plain(compose(Draft("hr@acme.test", [f"u{n}@d{n % 3}.test"], f"s{n}", "t"), id_domain="p.test"))


def stored(engine, message_id: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).where(messages.c.id == message_id)).scalar_one() == 1


def test_a_caller_is_answered_only_once_its_message_is_committed(make_app):
    app = make_app()
    tenant = add_tenant(app.engine, "acme")
    observer = create_engine(app.settings.DATABASE_URL)  # another connection: sees only what committed
    writer = GroupCommit(app.engine, autostart=False)
    items = [outgoing(n) for n in range(40)]
    seen_at_answer: dict[str, bool] = {}
    for item in items:
        done = writer.submit(tenant.id, item, lifetime=3600)
        # The callback runs the moment the answer is given, in the writer's thread.
        done.add_done_callback(lambda _, mid=item.message.id: seen_at_answer.__setitem__(mid, stored(observer, mid)))
    writer.start()
    writer.close()
    observer.dispose()
    assert len(seen_at_answer) == 40 and all(seen_at_answer.values())


def test_messages_that_arrive_together_share_a_transaction(make_app):
    app = make_app()
    tenant = add_tenant(app.engine, "acme")
    other = add_tenant(app.engine, "globex")
    writer = GroupCommit(app.engine, max_group=100, autostart=False)
    futures = [writer.submit((tenant if n % 2 else other).id, outgoing(n), lifetime=3600 + n % 3) for n in range(250)]
    writer.start()
    writer.close()
    assert all(f.result() for f in futures)
    assert (writer.transactions, writer.messages) == (3, 250)  # 100 + 100 + 50
    with app.engine.connect() as conn:
        owners = dict(conn.execute(select(messages.c.tenant_id, func.count()).group_by(messages.c.tenant_id)).all())
    assert owners == {tenant.id: 125, other.id: 125}


def test_one_bad_message_in_a_group_fails_alone(make_app):
    app = make_app()
    tenant = add_tenant(app.engine, "acme")
    writer = GroupCommit(app.engine, autostart=False)
    items = [outgoing(n) for n in range(10)]
    futures = [writer.submit(tenant.id, item, lifetime=3600) for item in items]
    twice = writer.submit(tenant.id, items[3], lifetime=3600)  # the same message id again: refused by the store
    writer.start()
    writer.close()
    assert all(f.exception() is None for f in futures)
    assert isinstance(twice.exception(), StoreError)  # answered as the store's refusal (503), not a crash
    assert all(stored(app.engine, item.message.id) for item in items)


def test_callers_on_an_event_loop_await_without_blocking_it(make_app):
    app = make_app()
    tenant = add_tenant(app.engine, "acme")
    writer = GroupCommit(app.engine)

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        tick = asyncio.create_task(ticker())
        answers = await asyncio.gather(*(writer.enqueue_async(tenant.id, outgoing(n), lifetime=3600) for n in range(60)))
        tick.cancel()
        return answers, ticks

    answers, ticks = asyncio.run(main())
    writer.close()
    assert len(answers) == 60 and ticks > 1  # the loop kept running while the writer wrote
    assert writer.transactions < 60


def test_a_closed_writer_refuses_new_messages(make_app):
    app = make_app()
    tenant = add_tenant(app.engine, "acme")
    writer = GroupCommit(app.engine)
    writer.enqueue(tenant.id, outgoing(1), lifetime=3600)
    writer.close()
    with pytest.raises(RuntimeError):
        writer.submit(tenant.id, outgoing(2), lifetime=3600)


@pytest.mark.parametrize("setting, level", [(None, 1), ("NORMAL", 1), ("FULL", 2)])
def test_sqlite_flushes_every_commit_to_disk_only_when_asked(tmp_path, setting, level):
    from sqlalchemy import text

    from postbote.app import App

    overrides = {"SQLITE_SYNCHRONOUS": setting} if setting else {}
    app = App.from_environment(DATABASE_URL=f"sqlite:///{tmp_path}/s.db", SECRET_KEY="x" * 40, **overrides)
    with app.engine.connect() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar_one() == level  # 1 NORMAL, 2 FULL
    app.close()
