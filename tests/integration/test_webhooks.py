"""Webhooks end to end: endpoints registered over the API, mail delivered to a real SMTP receiver
on loopback, and the calls made over HTTP to a real webhook receiver on loopback — signed as the
Standard Webhooks specification says (checked with its reference library), in order per message,
retried while the receiver is down, parked as dead and replayed, guarded against private
addresses, and kept to their tenant. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from postbote.api import create_api
from postbote.db.schema import utcnow, webhook_calls, webhook_endpoints
from postbote.testing import Receiver, WebhookReceiver
from postbote.testing.smtp_receiver import Greylister
from postbote.tenants import add_tenant, create_key, get_tenant
from postbote.webhooks import run_webhooks
from postbote.workflows.unsubscribe import Unsubscribe, make_token
from tests.conftest import MX1, run_worker
from tests.support.mail import it_team_publishes, publish_to_zone

# A receiver in the test's process can be slow to answer on a loaded machine; a call that times
# out is made again (at least once), so tests that count arrivals count distinct event ids.
FAST = dict(ALLOW_PRIVATE_WEBHOOKS=True, WEBHOOK_RETRY_SCHEDULE=["1s"], WEBHOOK_TIMEOUT=10)


def _bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def receiver():
    with WebhookReceiver() as hooks:
        yield hooks


def _platform(make_app, zone, **settings):
    zone.mail_domain("kunde.test", (10, "mx.kunde.test", MX1))
    app = make_app(**{**FAST, **settings})
    client = TestClient(create_api(app))
    keys = {name: _bearer(create_key(app.engine, add_tenant(app.engine, name, name.upper()))) for name in ("acme", "globex")}
    return app, client, keys


def _endpoint(client, headers, url, events=("message.*",), **extra) -> dict:
    made = client.post("/v1/webhooks", json={"url": url, "events": list(events), **extra}, headers=headers)
    assert made.status_code == 201, made.text
    assert made.json()["secret"].startswith("whsec_")
    return made.json()


def _send(client, headers, to="anna@kunde.test") -> str:
    sent = client.post("/v1/messages", json={"from": "HR <hr@platform.test>", "to": [to], "subject": "Hallo",
                                             "text": "Willkommen"}, headers=headers)
    assert sent.status_code == 202, sent.text
    return sent.json()["id"]


def pump(app, until, *, timeout: float = 20.0, at_least: float = 0.0) -> None:
    """The webhook loop of serve and worker, run until ``until()`` holds (and ``at_least`` seconds)."""

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.create_task(run_webhooks(app.engine, app.settings, app.resolver, stop))
        began = time.monotonic()
        try:
            while not (until() and time.monotonic() - began >= at_least):
                assert time.monotonic() - began < timeout, "the webhook loop did not get there in time"
                assert not loop.done(), loop.exception() if loop.done() else None
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await loop

    asyncio.run(go())


def settle(app) -> None:
    """The loop run for a second and until no call is due."""
    pump(app, lambda: not _due(app), at_least=1.0)


def _due(app) -> bool:
    """A call the loop would take now (due, its endpoint enabled, its tenant not suspended)."""
    from postbote.db.schema import tenants

    with app.engine.connect() as conn:
        return conn.execute(select(webhook_calls.c.id)
                            .join(webhook_endpoints, webhook_endpoints.c.id == webhook_calls.c.endpoint_id)
                            .join(tenants, tenants.c.id == webhook_endpoints.c.tenant_id)
                            .where(webhook_calls.c.state == "pending", webhook_calls.c.next_attempt_at <= utcnow(),
                                   webhook_endpoints.c.enabled.is_(True), tenants.c.suspended_at.is_(None))
                            ).first() is not None


def distinct(received) -> list:
    """What arrived, each event once (a repeat of an event id is at-least-once doing its job)."""
    seen, out = set(), []
    for r in list(received):
        if r.headers["webhook-id"] not in seen:
            seen.add(r.headers["webhook-id"])
            out.append(r)
    return out


def _calls(app, endpoint_id: str) -> list:
    with app.engine.connect() as conn:
        return conn.execute(select(webhook_calls).where(webhook_calls.c.endpoint_id == endpoint_id)
                            .order_by(webhook_calls.c.id)).all()


def _verified(secret: str, got) -> dict:
    return Webhook(secret).verify(got.body, got.headers)


def test_a_messages_events_arrive_signed_in_order_and_verify_with_the_reference_library(make_app, zone, smtp_port,
                                                                                      receiver):
    app, client, keys = _platform(make_app, zone)
    endpoint = _endpoint(client, keys["acme"], receiver.url())
    message_id = _send(client, keys["acme"])
    with Receiver(MX1, smtp_port, Greylister()):  # a 450 first, accepted on the retry
        run_worker(app, timeout=30)
    pump(app, lambda: len(distinct(receiver.received)) >= 3)
    got = distinct(receiver.received)[:3]
    payloads = [_verified(endpoint["secret"], g) for g in got]
    assert [p["type"] for p in payloads] == ["message.queued", "message.deferred", "message.delivered"]
    assert all(p["data"]["message_id"] == message_id for p in payloads)
    assert payloads[1]["data"]["recipient"] == "anna@kunde.test" and "Greylisted" in payloads[1]["data"]["reason"]
    assert payloads[0]["data"]["recipients"] == ["anna@kunde.test"]
    ids = [g.headers["webhook-id"] for g in got]
    assert len(set(ids)) == 3 and ids == [p["id"] for p in payloads]
    with pytest.raises(WebhookVerificationError):  # the signature covers the body
        Webhook(endpoint["secret"]).verify(got[2].body.replace(b"delivered", b"bounced"), got[2].headers)
    with pytest.raises(WebhookVerificationError):  # and is the endpoint's own
        Webhook("whsec_" + "QUJD" * 8).verify(got[0].body, got[0].headers)
    calls = client.get(f"/v1/webhooks/{endpoint['id']}/calls", headers=keys["acme"]).json()
    assert [c["state"] for c in calls["calls"]] == ["delivered"] * 3 and calls["next_cursor"] is None
    one = client.get(f"/v1/webhooks/{endpoint['id']}/calls/{calls['calls'][0]['id']}", headers=keys["acme"]).json()
    assert one["payload"]["type"] == "message.delivered"
    [attempt] = one["attempt_log"]
    assert attempt["status"] == 200 and attempt["response_excerpt"] == "ok" and attempt["duration_ms"] >= 0


def test_while_the_receiver_is_down_calls_are_retried_and_arrive_later(make_app, zone, smtp_port, receiver):
    app, client, keys = _platform(make_app, zone)
    endpoint = _endpoint(client, keys["acme"], receiver.url(), events=["message.queued"])
    receiver.stop()
    message_id = _send(client, keys["acme"])
    pump(app, lambda: (_calls(app, endpoint["id"]) or [None])[0] is not None
         and _calls(app, endpoint["id"])[0].attempts >= 2)
    [call] = _calls(app, endpoint["id"])
    assert call.state == "pending" and call.last_status is None and "Connect" in call.last_error
    shown = client.get(f"/v1/webhooks/{endpoint['id']}/calls/{call.id}", headers=keys["acme"]).json()
    assert len(shown["attempt_log"]) >= 2 and all(a["status"] is None for a in shown["attempt_log"])
    receiver.start()  # back on the same port
    pump(app, lambda: _calls(app, endpoint["id"])[0].state == "delivered")
    [got] = receiver.wait_for(1)
    assert _verified(endpoint["secret"], got)["data"]["message_id"] == message_id
    assert got.headers["webhook-id"] == call.event_id  # the same event id as the failed attempts


def test_a_call_that_fails_holds_back_the_later_events_of_its_message(make_app, zone, smtp_port, receiver):
    app, client, keys = _platform(make_app, zone)
    endpoint = _endpoint(client, keys["acme"], receiver.url())
    receiver.behaviour.fail_first = 2  # the first event's call fails twice
    _send(client, keys["acme"])
    with Receiver(MX1, smtp_port):
        run_worker(app)
    pump(app, lambda: len(receiver.received) >= 4)
    got = receiver.wait_for(4)
    types = [json.loads(g.body)["type"] for g in got]
    assert types == ["message.queued", "message.queued", "message.queued", "message.delivered"], types


def test_a_call_past_its_age_is_dead_until_replayed_with_its_event_id(make_app, zone, smtp_port, receiver):
    app, client, keys = _platform(make_app, zone, WEBHOOK_MAX_AGE="2s")
    endpoint = _endpoint(client, keys["acme"], receiver.url(), events=["message.queued"])
    receiver.behaviour.status = 500
    _send(client, keys["acme"])
    pump(app, lambda: bool(_calls(app, endpoint["id"])) and _calls(app, endpoint["id"])[0].state == "dead")
    dead = client.get(f"/v1/webhooks/{endpoint['id']}/calls?state=dead", headers=keys["acme"]).json()["calls"]
    assert len(dead) == 1 and dead[0]["last_status"] == 500 and dead[0]["attempts"] >= 2
    assert client.get(f"/v1/webhooks/{endpoint['id']}/calls?state=pending", headers=keys["acme"]).json()["calls"] == []
    tries = len(receiver.received)
    time.sleep(1.2)
    settle(app)
    assert len(receiver.received) == tries  # a dead call is not retried
    receiver.behaviour.status = 204
    replayed = client.post(f"/v1/webhooks/{endpoint['id']}/replay", headers=keys["acme"])
    assert replayed.status_code == 202 and replayed.json() == {"replayed": 1}
    pump(app, lambda: _calls(app, endpoint["id"])[0].state == "delivered")
    last = receiver.received[-1]
    assert last.headers["webhook-id"] == receiver.received[0].headers["webhook-id"] and last.body == receiver.received[0].body
    again = client.post(f"/v1/webhooks/{endpoint['id']}/calls/{dead[0]['id']}/replay", headers=keys["acme"])
    assert again.status_code == 202 and again.json() == {"replayed": 1}  # a delivered one can be sent again too
    pump(app, lambda: len(receiver.received) >= tries + 2)


def test_a_tenant_hears_only_of_its_own_mail_and_cannot_reach_another_tenants_endpoints(make_app, zone, smtp_port):
    app, client, keys = _platform(make_app, zone)
    with WebhookReceiver() as acme_hooks, WebhookReceiver() as globex_hooks:
        acme = _endpoint(client, keys["acme"], acme_hooks.url(), events=["*"])
        _endpoint(client, keys["globex"], globex_hooks.url(), events=["*"])
        _send(client, keys["acme"])
        pump(app, lambda: len(acme_hooks.received) >= 1)
        settle(app)
        assert globex_hooks.received == []
    other = keys["globex"]
    base = f"/v1/webhooks/{acme['id']}"
    [call] = _calls(app, acme["id"])
    for method, path in [("GET", base), ("PATCH", base), ("DELETE", base), ("GET", f"{base}/calls"),
                         ("GET", f"{base}/calls/{call.id}"), ("POST", f"{base}/calls/{call.id}/replay"),
                         ("POST", f"{base}/replay"), ("POST", f"{base}/rotate-secret"), ("POST", f"{base}/test")]:
        answer = client.request(method, path, headers=other, json={} if method in ("PATCH",) else None)
        assert answer.status_code == 404, (method, path, answer.text)
        assert acme["url"] not in answer.text and call.event_id not in answer.text
    assert client.get("/v1/webhooks", headers=other).json()["webhooks"][0]["id"] != acme["id"]
    assert client.get(f"{base}/calls/{call.id}", headers=keys["acme"]).status_code == 200


def test_a_rotated_secret_signs_beside_the_old_one_for_the_overlap_only(make_app, zone, smtp_port, receiver):
    app, client, keys = _platform(make_app, zone)
    endpoint = _endpoint(client, keys["acme"], receiver.url(), events=["message.queued"])
    old = endpoint["secret"]
    rotated = client.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret", json={"overlap": "1h"}, headers=keys["acme"])
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["secret"]
    assert new != old and rotated.json()["previous_secret_valid_until"] is not None
    client.post(f"/v1/webhooks/{endpoint['id']}/test", headers=keys["acme"])
    pump(app, lambda: len(receiver.received) >= 1)
    first = distinct(receiver.received)[0]
    assert len(first.headers["webhook-signature"].split()) == 2
    assert _verified(old, first)["type"] == "webhook.test" and _verified(new, first)["type"] == "webhook.test"
    newest = client.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret", json={"overlap": "0s"}, headers=keys["acme"])
    assert newest.status_code == 201 and newest.json()["previous_secret_valid_until"] is None
    client.post(f"/v1/webhooks/{endpoint['id']}/test", headers=keys["acme"])
    pump(app, lambda: len(distinct(receiver.received)) >= 2)
    second = distinct(receiver.received)[1]
    assert _verified(newest.json()["secret"], second)["type"] == "webhook.test"
    for stale in (old, new):
        with pytest.raises(WebhookVerificationError):
            _verified(stale, second)
    bad = client.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret", json={"overlap": "8d"}, headers=keys["acme"])
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "overlap_invalid"


def test_private_addresses_are_refused_when_registered_and_when_a_name_resolves_to_one(make_app, zone, smtp_port,
                                                                                      receiver):
    app, client, keys = _platform(make_app, zone, ALLOW_PRIVATE_WEBHOOKS=False)
    for url in (f"https://127.0.0.1:{receiver.port}/hook", "https://10.1.2.3/hook", "https://[::1]/hook",
                "https://169.254.169.254/latest/meta-data", "https://[::ffff:127.0.0.1]/hook"):
        refused = client.post("/v1/webhooks", json={"url": url, "events": ["*"]}, headers=keys["acme"])
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "webhook_url_refused", (url, refused.text)
    plain = client.post("/v1/webhooks", json={"url": "http://hooks.kunde.test/hook", "events": ["*"]}, headers=keys["acme"])
    assert plain.status_code == 422 and plain.json()["error"]["code"] == "webhook_url_invalid"
    zone.add("hooks.kunde.test", "A", "127.0.0.1")  # a public-looking name that leads to loopback
    endpoint = _endpoint(client, keys["acme"], f"https://hooks.kunde.test:{receiver.port}/hook", events=["message.queued"])
    _send(client, keys["acme"])
    pump(app, lambda: bool(_calls(app, endpoint["id"])) and _calls(app, endpoint["id"])[0].attempts >= 1)
    [call] = _calls(app, endpoint["id"])
    assert call.state == "pending" and "not a public address" in call.last_error
    assert receiver.connections == 0  # no connection was even opened


def test_bad_endpoints_get_codes_and_hints_and_secrets_are_stored_sealed(make_app, zone, smtp_port, receiver):
    app, client, keys = _platform(make_app, zone, WEBHOOK_MAX_ENDPOINTS=2)
    cases = [
        ({"url": receiver.url(), "events": ["message.opened"]}, "webhook_events_invalid"),
        ({"url": receiver.url(), "events": []}, "webhook_events_invalid"),
        ({"url": receiver.url(), "events": ["nothing.*"]}, "webhook_events_invalid"),
        ({"url": "ftp://hooks.kunde.test/x", "events": ["*"]}, "webhook_url_invalid"),
        ({"url": "https://user:pw@hooks.kunde.test/x", "events": ["*"]}, "webhook_url_invalid"),
        ({"url": "https://hooks.kunde.test/x#frag", "events": ["*"]}, "webhook_url_invalid"),
        ({"url": "https:///nohost", "events": ["*"]}, "webhook_url_invalid"),
        ({"url": "https://hooks.kunde.test/a b", "events": ["*"]}, "webhook_url_invalid"),
        ({"url": "https://hooks.kunde.test:99999/x", "events": ["*"]}, "webhook_url_invalid"),
        ({"url": "https://hooks.kunde.test/" + "x" * 2000, "events": ["*"]}, "request_invalid"),
        ({"url": receiver.url(), "events": ["*"], "secret": "mine"}, "request_invalid"),
    ]
    for body, code in cases:
        answer = client.post("/v1/webhooks", json=body, headers=keys["acme"])
        assert answer.status_code == 422 and answer.json()["error"]["code"] == code, (body, answer.text)
        assert answer.json()["error"]["hint"]
    first = _endpoint(client, keys["acme"], receiver.url())
    _endpoint(client, keys["acme"], receiver.url("/second"))
    third = client.post("/v1/webhooks", json={"url": receiver.url("/third"), "events": ["*"]}, headers=keys["acme"])
    assert third.status_code == 409 and third.json()["error"]["code"] == "webhook_limit"
    listed = client.get("/v1/webhooks", headers=keys["acme"]).json()["webhooks"]
    assert len(listed) == 2 and all("secret" not in e for e in listed)
    assert "secret" not in client.get(f"/v1/webhooks/{first['id']}", headers=keys["acme"]).json()
    with app.engine.connect() as conn:
        stored = [str(tuple(r)) for r in conn.execute(select(webhook_endpoints))]
    secret_bytes = first["secret"].removeprefix("whsec_")
    assert all(secret_bytes not in row and first["secret"] not in row for row in stored)
    changed = client.patch(f"/v1/webhooks/{first['id']}", json={"events": ["domain.*"], "enabled": False},
                           headers=keys["acme"])
    assert changed.status_code == 200 and changed.json()["events"] == ["domain.*"] and changed.json()["enabled"] is False
    assert changed.json()["url"] == receiver.url()
    bad = client.patch(f"/v1/webhooks/{first['id']}", json={"url": None}, headers=keys["acme"])
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "webhook_invalid"
    assert client.delete(f"/v1/webhooks/{first['id']}", headers=keys["acme"]).json() == {"id": first["id"], "removed": True}
    assert client.get(f"/v1/webhooks/{first['id']}", headers=keys["acme"]).json()["error"]["code"] == "webhook_not_found"


def test_sender_domain_states_and_suppressions_reach_the_endpoint(make_app, zone, smtp_port, receiver):
    app, client, keys = _platform(make_app, zone)
    endpoint = _endpoint(client, keys["acme"], receiver.url(), events=["domain.*", "recipient.*"])
    records = client.post("/v1/domains", json={"domain": "acme.test"}, headers=keys["acme"]).json()["records"]
    publish_to_zone(zone, app)
    it_team_publishes(zone, records)
    assert client.post("/v1/domains/acme.test/verify", headers=keys["acme"]).json()["state"] == "verified"
    zone.remove("pb1._domainkey.acme.test", "CNAME")
    assert client.post("/v1/domains/acme.test/verify", headers=keys["acme"]).json()["state"] == "broken"
    assert client.post("/v1/suppressions", json={"address": "Lea@Kunde.test"}, headers=keys["acme"]).status_code == 201
    token = make_token(app.settings.SECRET_KEY, Unsubscribe(get_tenant(app.engine, "acme").id, "bulk@kunde.test", 1))
    assert client.post(f"/v1/unsubscribe/{token}").status_code == 200
    pump(app, lambda: len(distinct(receiver.received)) >= 4)
    payloads = [_verified(endpoint["secret"], g) for g in distinct(receiver.received)]
    by_type = {p["type"]: p for p in payloads}
    assert sorted(by_type) == ["domain.broken", "domain.verified", "recipient.suppressed", "recipient.unsubscribed"]
    domain_order = [p["type"] for p in payloads if p["type"].startswith("domain.")]
    assert domain_order == ["domain.verified", "domain.broken"]  # in order for one domain
    broken = by_type["domain.broken"]["data"]
    assert broken["domain"] == "acme.test" and broken["previous_state"] == "verified"
    assert "pb1._domainkey.acme.test" in broken["not_ok"]
    assert by_type["recipient.suppressed"]["data"]["address"] == "lea@kunde.test"
    assert by_type["recipient.suppressed"]["data"]["reason"] == "manual"
    assert by_type["recipient.unsubscribed"]["data"]["address"] == "bulk@kunde.test"


def test_an_endpoint_hears_what_it_selects_from_after_it_was_registered(make_app, zone, smtp_port, receiver):
    app, client, keys = _platform(make_app, zone)
    _send(client, keys["acme"], to="before@kunde.test")  # accepted before the endpoint existed
    endpoint = _endpoint(client, keys["acme"], receiver.url(), events=["message.queued", "message.delivered"])
    _send(client, keys["acme"], to="after@kunde.test")
    with Receiver(MX1, smtp_port):
        run_worker(app)
    pump(app, lambda: len(distinct(receiver.received)) >= 3)
    settle(app)
    seen = sorted((p["type"], p["data"].get("recipient") or p["data"]["recipients"][0])
                  for p in (_verified(endpoint["secret"], g) for g in distinct(receiver.received)))
    # not the first message's acceptance, which came before the endpoint; its delivery came after
    assert seen == [("message.delivered", "after@kunde.test"), ("message.delivered", "before@kunde.test"),
                    ("message.queued", "after@kunde.test")]
    client.patch(f"/v1/webhooks/{endpoint['id']}", json={"events": ["message.bounced"]}, headers=keys["acme"])
    _send(client, keys["acme"], to="third@kunde.test")
    with Receiver(MX1, smtp_port):
        run_worker(app)
    settle(app)
    assert len(distinct(receiver.received)) == 3  # queued and delivered are no longer selected


def test_a_redirect_is_not_followed_and_counts_as_a_failure(make_app, zone, smtp_port, receiver):
    app, client, keys = _platform(make_app, zone)
    with WebhookReceiver() as elsewhere:
        receiver.behaviour.status = 307
        receiver.behaviour.location = elsewhere.url()
        endpoint = _endpoint(client, keys["acme"], receiver.url(), events=["domain.failed"])
        client.post(f"/v1/webhooks/{endpoint['id']}/test", headers=keys["acme"])
        pump(app, lambda: bool(_calls(app, endpoint["id"])) and _calls(app, endpoint["id"])[0].attempts >= 1)
        [call] = _calls(app, endpoint["id"])
        assert call.state == "pending" and call.last_status == 307 and "not followed" in call.last_error
        assert elsewhere.received == []


def test_dispatchers_running_side_by_side_make_each_call_once(make_app, zone, smtp_port, receiver):
    """serve and workers on one store each dispatch: every log line becomes one call per endpoint."""
    from concurrent.futures import ThreadPoolExecutor

    from postbote.webhooks import dispatch

    app, client, keys = _platform(make_app, zone)
    endpoint = _endpoint(client, keys["acme"], receiver.url(), events=["message.queued"])
    for n in range(40):
        _send(client, keys["acme"], to=f"p{n}@kunde.test")
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda _: dispatch(app.engine, max_age_seconds=60, limit=7), range(16)))
    assert sum(made) == 40
    assert sorted(c.event_id for c in _calls(app, endpoint["id"])) == sorted({c.event_id for c in _calls(app, endpoint["id"])})


def _workflow(**changes) -> dict:
    workflow = {"name": "Interview invitation", "trigger": "candidate.stage_changed",
                "actions": [{"recipients": [{"role": "candidate"}], "sender": {"domain": None},
                             "templates": {"en": {"subject": "Hello {{ candidate.name }}", "text": "See you."}}}]}
    workflow.update(changes)
    return workflow


def _event(key: str) -> dict:
    return {"type": "candidate.stage_changed", "idempotency_key": key,
            "people": {"candidate": {"email": "lea@kunde.test", "name": "Lea"}}}


def test_workflow_events_handled_and_delayed_jobs_given_up_reach_the_endpoint(make_app, zone, smtp_port, receiver):
    from postbote.db.schema import workflow_jobs
    from postbote.workflows import delays

    app, client, keys = _platform(make_app, zone)
    endpoint = _endpoint(client, keys["acme"], receiver.url(), events=["workflow.*"])
    assert client.post("/v1/workflows", json=_workflow(), headers=keys["acme"]).status_code == 201
    answer = client.post("/v1/events", json=_event("cand-7-stage-2"), headers=keys["acme"]).json()
    assert client.post("/v1/events", json=_event("cand-7-stage-2"), headers=keys["acme"]).json()["duplicate"] is True
    pump(app, lambda: len(receiver.received) >= 1)
    settle(app)
    [handled] = [_verified(endpoint["secret"], g) for g in distinct(receiver.received)]  # once, though posted twice
    assert handled["type"] == "workflow.event_handled" and handled["data"]["idempotency_key"] == "cand-7-stage-2"
    assert handled["data"]["results"] == answer["results"] and handled["data"]["results"][0]["outcome"] == "sent"

    assert client.post("/v1/workflows", json=_workflow(name="Later", delay={"offset": "1h"}),
                       headers=keys["acme"]).status_code == 201
    client.post("/v1/events", json=_event("cand-8-stage-2"), headers=keys["acme"])
    with app.engine.connect() as conn:
        job = conn.execute(select(workflow_jobs)).one()
    for _ in range(delays.JOB_RETRIES):  # the job's runs fail until it is given up
        with app.engine.connect() as conn:
            job = conn.execute(select(workflow_jobs).where(workflow_jobs.c.id == job.id)).one()
        delays._failed(app.engine, job, RuntimeError("the event is gone"), utcnow())
    pump(app, lambda: len(distinct(receiver.received)) >= 3)
    types = sorted(json.loads(g.body)["type"] for g in distinct(receiver.received))
    assert types == ["workflow.event_handled", "workflow.event_handled", "workflow.job_failed"]
    failed = next(json.loads(g.body) for g in receiver.received if json.loads(g.body)["type"] == "workflow.job_failed")
    assert failed["data"]["job_id"] == job.id and failed["data"]["outcome"]["failures"] == delays.JOB_RETRIES


def test_an_event_still_being_handled_is_not_told_until_it_is_answered(make_app, zone, smtp_port, receiver):
    from postbote.webhooks import dispatch
    from postbote.workflows.events import parse_event, record_event, store_answer

    app, client, keys = _platform(make_app, zone)
    endpoint = _endpoint(client, keys["acme"], receiver.url(), events=["workflow.event_handled"])
    event, _ = record_event(app.engine, get_tenant(app.engine, "acme").id, parse_event(_event("in-flight-1")))
    dispatch(app.engine, max_age_seconds=60)
    assert _calls(app, endpoint["id"]) == []  # its handler has not answered yet
    store_answer(app.engine, event.id, {"id": event.id, "results": [{"outcome": "sent"}]})
    dispatch(app.engine, max_age_seconds=60)
    [call] = _calls(app, endpoint["id"])
    assert json.loads(call.body)["data"]["results"] == [{"outcome": "sent"}]


def test_what_a_receiver_answers_is_kept_safely_and_never_stalls_other_calls(make_app, zone, smtp_port, receiver):
    """A NUL in the answer (PostgreSQL cannot store one) and an endpoint removed while its call is
    in flight cost no other call its outcome."""
    app, client, keys = _platform(make_app, zone)
    nul = _endpoint(client, keys["acme"], receiver.url("/nul"), events=["message.queued"])
    receiver.behaviour.answer = b"ok\x00then more"
    with WebhookReceiver() as slow_hooks, WebhookReceiver() as other_hooks:
        slow_hooks.behaviour.pause = 1.0
        slow = _endpoint(client, keys["acme"], slow_hooks.url(), events=["message.queued"])
        other = _endpoint(client, keys["globex"], other_hooks.url(), events=["message.queued"])
        _send(client, keys["acme"])
        _send(client, keys["globex"])

        removed = []

        def remove_the_slow_one_mid_call() -> bool:
            if slow_hooks.received and not removed:  # its call is in flight: the receiver pauses
                assert client.delete(f"/v1/webhooks/{slow['id']}", headers=keys["acme"]).status_code == 200
                removed.append(True)
            return bool(removed) and all(c.state == "delivered" for ep in (nul, other) for c in _calls(app, ep["id"])) \
                and bool(_calls(app, nul["id"])) and bool(_calls(app, other["id"]))

        pump(app, remove_the_slow_one_mid_call)
    [call] = _calls(app, nul["id"])
    shown = client.get(f"/v1/webhooks/{nul['id']}/calls/{call.id}", headers=keys["acme"]).json()
    assert shown["attempt_log"][0]["response_excerpt"] == "ok\ufffdthen more"
    assert _calls(app, slow["id"]) == []


def test_an_internationalised_host_is_called_by_its_a_labels(make_app, zone, smtp_port, receiver):
    app, client, keys = _platform(make_app, zone)
    zone.add("xn--bcher-kva.kunde.test", "A", "127.0.0.1")
    endpoint = _endpoint(client, keys["acme"], f"http://bücher.kunde.test:{receiver.port}/hook", events=["message.queued"])
    assert endpoint["url"] == f"http://xn--bcher-kva.kunde.test:{receiver.port}/hook"
    _send(client, keys["acme"])
    pump(app, lambda: len(receiver.received) >= 1)
    assert receiver.received[0].headers["host"] == f"xn--bcher-kva.kunde.test:{receiver.port}"


def test_a_disabled_endpoint_gets_nothing_and_says_so(make_app, zone, smtp_port, receiver):
    app, client, keys = _platform(make_app, zone)
    endpoint = _endpoint(client, keys["acme"], receiver.url(), events=["message.queued"], enabled=False)
    _send(client, keys["acme"])
    settle(app)
    assert receiver.received == [] and _calls(app, endpoint["id"]) == []
    for path in ("test", "replay"):
        answer = client.post(f"/v1/webhooks/{endpoint['id']}/{path}", headers=keys["acme"])
        assert answer.status_code == 409 and answer.json()["error"]["code"] == "webhook_disabled"


def test_https_calls_go_to_the_checked_address_and_verify_the_urls_name(make_app, zone, smtp_port, tmp_path):
    """The connection is made to the address that was checked, yet TLS checks the certificate
    against the URL's name (SNI and verification): a certificate for another name is refused."""
    import ssl

    import trustme

    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    app, client, keys = _platform(make_app, zone, TLS_CA_FILE=str(ca_file))
    zone.add("hooks.kunde.test", "A", "127.0.0.1")
    zone.add("other.kunde.test", "A", "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("hooks.kunde.test").configure_cert(context)
    with WebhookReceiver(tls_context=context) as hooks:
        good = _endpoint(client, keys["acme"], f"https://hooks.kunde.test:{hooks.port}/in", events=["message.queued"])
        wrong = _endpoint(client, keys["acme"], f"https://other.kunde.test:{hooks.port}/in", events=["message.queued"])
        _send(client, keys["acme"])
        pump(app, lambda: bool(_calls(app, good["id"])) and _calls(app, good["id"])[0].state == "delivered"
             and bool(_calls(app, wrong["id"])) and _calls(app, wrong["id"])[0].attempts >= 1)
        [got] = hooks.received
        assert _verified(good["secret"], got)["type"] == "message.queued"
        assert got.headers["host"] == f"hooks.kunde.test:{hooks.port}"
    [refused] = _calls(app, wrong["id"])
    assert refused.state == "pending" and "certificate" in refused.last_error.lower(), refused.last_error


def test_a_suspended_tenants_calls_wait_until_it_is_resumed(make_app, zone, smtp_port, receiver):
    from postbote.admins import resume, suspend

    app, client, keys = _platform(make_app, zone)
    endpoint = _endpoint(client, keys["acme"], receiver.url(), events=["message.queued"])
    _send(client, keys["acme"])
    suspend(app.engine, "acme", "invoice overdue")
    settle(app)
    [call] = _calls(app, endpoint["id"])
    assert receiver.received == [] and call.state == "pending" and call.attempts == 0
    resume(app.engine, "acme")
    pump(app, lambda: len(receiver.received) >= 1)
    assert _calls(app, endpoint["id"])[0].state == "delivered"
