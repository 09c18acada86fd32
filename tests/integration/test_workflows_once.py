"""Workflow mail at most once when the process handling it dies midway: an event taken over by a
repeat post, a delayed job or digest taken over by the next loop once the dead one's lease has
passed — on SQLite and PostgreSQL, delivered to a real receiver on loopback."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

import postbote.workflows.run as run
from postbote.db.schema import messages, workflow_jobs
from postbote.errors import ConflictError
from postbote.tenants import get_tenant
from postbote.testing import Receiver
from postbote.workflows import Deps, handle_event, run_due
from postbote.workflows import delays, digests, events
from postbote.workflows.action import run_action
from postbote.workflows.delays import claim_job
from postbote.workflows.store import get_workflow
from tests.conftest import MX1, run_worker
from tests.integration.test_workflows import api, auth, stage_event, stage_workflow  # noqa: F401

T0 = datetime(2030, 3, 4, 9, 0, tzinfo=timezone.utc)


class Died(BaseException):
    """The process is gone: nothing after this point of the handling runs, not even its cleanup."""


def handler_dies(monkeypatch, deps, tenant, event) -> None:
    """Handle ``event`` in a process that dies before it answers, letting nothing go."""
    def store_answer(*args, **kwargs):
        raise Died()

    with monkeypatch.context() as dying:
        dying.setattr(run, "store_answer", store_answer)
        dying.setattr(run, "release_event", lambda *args: None)
        with pytest.raises(Died):
            asyncio.run(handle_event(deps, tenant, event, now=T0))


def message_count(app) -> int:
    with app.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(messages)).scalar_one()


def test_an_event_whose_handler_died_after_sending_is_taken_over_without_a_second_mail(api, smtp_port, monkeypatch):
    app = api.app_ref
    api.post("/v1/workflows", json=stage_workflow(domain=None), headers=auth(api))
    deps, acme = Deps(app.engine, app.settings, app.resolver), get_tenant(app.engine, "acme")
    handler_dies(monkeypatch, deps, acme, stage_event("c-died"))
    assert message_count(app) == 1  # the mail was accepted before the process died
    with pytest.raises(ConflictError) as held:  # the dead handler's lease has not passed yet
        asyncio.run(handle_event(deps, acme, stage_event("c-died"), now=T0 + timedelta(seconds=30)))
    assert held.value.code == "event_in_progress"
    answer = asyncio.run(handle_event(deps, acme, stage_event("c-died"), now=T0 + events.LEASE))
    [result] = answer["results"]
    assert result["outcome"] == "sent" and "earlier run" in result["reason"]
    assert message_count(app) == 1
    assert asyncio.run(handle_event(deps, acme, stage_event("c-died"), now=T0 + 2 * events.LEASE))["duplicate"]
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    assert len(mx.messages) == 1


def test_an_event_whose_handler_died_after_scheduling_keeps_one_job(api, monkeypatch):
    app = api.app_ref
    api.post("/v1/workflows", json=stage_workflow(domain=None, delay={"offset": "1h"}), headers=auth(api))
    deps, acme = Deps(app.engine, app.settings, app.resolver), get_tenant(app.engine, "acme")
    handler_dies(monkeypatch, deps, acme, stage_event("c-later"))
    answer = asyncio.run(handle_event(deps, acme, stage_event("c-later"), now=T0 + events.LEASE))
    assert [r["outcome"] for r in answer["results"]] == ["delayed"]
    with app.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(workflow_jobs)).scalar_one() == 1


def test_a_failed_handling_lets_go_at_once(api, monkeypatch):
    app = api.app_ref
    api.post("/v1/workflows", json=stage_workflow(domain=None), headers=auth(api))
    deps, acme = Deps(app.engine, app.settings, app.resolver), get_tenant(app.engine, "acme")
    real = run._fire

    async def failing(*args, **kwargs):
        raise RuntimeError("the store went away in the middle")

    monkeypatch.setattr(run, "_fire", failing)
    with pytest.raises(RuntimeError):
        asyncio.run(handle_event(deps, acme, stage_event("c-fail"), now=T0))
    monkeypatch.setattr(run, "_fire", real)
    answer = asyncio.run(handle_event(deps, acme, stage_event("c-fail"), now=T0))  # no wait for a lease
    first_id = answer["id"]
    assert [r["outcome"] for r in answer["results"]] == ["sent"]
    assert asyncio.run(handle_event(deps, acme, stage_event("c-fail"), now=T0))["id"] == first_id


def delayed_job(api):
    app = api.app_ref
    api.post("/v1/workflows", json=stage_workflow(domain=None, delay={"offset": "1h"}), headers=auth(api))
    answer = api.post("/v1/events", json=stage_event("c-job"), headers=auth(api)).json()
    due = datetime.fromisoformat(answer["results"][0]["due_at"].replace("Z", "+00:00"))
    with app.engine.connect() as conn:
        job_id = conn.execute(select(workflow_jobs.c.id)).scalar_one()
    return app, Deps(app.engine, app.settings, app.resolver), job_id, due


def test_a_job_left_running_by_a_dead_loop_is_taken_over_after_its_lease(api, smtp_port):
    app, deps, job_id, due = delayed_job(api)
    assert claim_job(app.engine, job_id, "dead-loop", now=due) is not None  # then that loop died
    assert asyncio.run(run_due(deps, now=due + timedelta(minutes=1))) == []  # its lease still holds
    [sent] = asyncio.run(run_due(deps, now=due + delays.LEASE))
    assert sent.outcome.value == "sent"
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    assert len(mx.messages) == 1


def test_a_job_whose_dead_loop_had_sent_its_mail_is_not_sent_again(api, smtp_port):
    app, deps, job_id, due = delayed_job(api)
    job = claim_job(app.engine, job_id, "dead-loop", now=due)
    acme = get_tenant(app.engine, "acme")
    workflow = get_workflow(app.engine, job.tenant_id, job.workflow_id, job.version)
    event, _ = events.load_event(app.engine, job.tenant_id, job.event_id)
    first = asyncio.run(run_action(deps, acme, workflow, job.action, job.recipient, event, fallback="en"))
    assert first.outcome.value == "sent"  # the dead loop got this far, not to marking the job done
    [again] = asyncio.run(run_due(deps, now=due + delays.LEASE))
    assert again.outcome.value == "sent" and again.message_id == first.message_id
    assert message_count(app) == 1
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    assert len(mx.messages) == 1


def test_a_digest_left_running_by_a_dead_loop_is_sent_once_after_its_lease(api, smtp_port):
    app = api.app_ref
    flow = stage_workflow(domain=None)
    flow["actions"][0]["digest"] = {"window": "1h"}
    flow["actions"][0]["templates"] = {"de": {"subject": "{{ count }} Ereignisse", "text": "{{ count }}"}}
    assert api.post("/v1/workflows", json=flow, headers=auth(api)).status_code == 201
    deps, acme = Deps(app.engine, app.settings, app.resolver), get_tenant(app.engine, "acme")
    for i in range(3):
        asyncio.run(handle_event(deps, acme, stage_event(f"c-d{i}"), now=T0 + timedelta(minutes=i)))
    due = T0 + timedelta(hours=1)
    real = digests._send

    async def dies(*args):
        await real(*args)  # accepted, then the loop died before marking the digest done
        raise Died()

    digests._send = dies
    try:
        with pytest.raises(Died):
            asyncio.run(run_due(deps, now=due))
    finally:
        digests._send = real
    assert asyncio.run(run_due(deps, now=due + timedelta(minutes=1))) == []  # lease holds
    [sent] = asyncio.run(run_due(deps, now=due + digests.LEASE))
    assert sent.outcome.value == "sent" and "earlier run" in (sent.reason or "")
    assert message_count(app) == 1
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    assert len(mx.messages) == 1
