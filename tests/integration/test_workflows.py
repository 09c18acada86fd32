"""Workflows through the API, end to end against real receivers and the DNS test server on
loopback, on SQLite and PostgreSQL: the e-mail action in three steps, idempotency, conditions,
delays with a clock of the test's own, versions, dry run, preview and test send."""

from __future__ import annotations

import asyncio
import email
from datetime import datetime, timezone
from email.header import decode_header, make_header

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from postbote.api import create_api
from postbote.db.schema import workflow_messages
from postbote.tenants import add_tenant, create_key
from postbote.testing import Receiver
from postbote.tenants import get_tenant
from postbote.workflows import Deps, handle_event, run_due
from postbote.workflows.delays import claim_job
from tests.conftest import MX1, MX3, run_worker
from tests.support.mail import dkim_verifies, it_team_publishes, publish_to_zone


@pytest.fixture
def api(make_app, zone):
    zone.mail_domain("acme.test", (10, "mx.acme.test", MX1))
    zone.mail_domain("kandidaten.test", (10, "mx.kandidaten.test", MX1))
    app = make_app()
    keys = {name: create_key(app.engine, add_tenant(app.engine, name, display))
            for name, display in (("acme", "ACME GmbH"), ("globex", "Globex AG"))}
    client = TestClient(create_api(app))
    client.app_ref, client.keys = app, keys
    return client


def auth(client, tenant="acme"):
    return {"Authorization": f"Bearer {client.keys[tenant]}"}


def stage_workflow(domain="acme.test", **changes):
    workflow = {
        "name": "Interview invitation",
        "trigger": "candidate.stage_changed",
        "conditions": [{"field": "fields.stage", "op": "eq", "value": "interview"}],
        "actions": [{
            "recipients": [{"role": "candidate"}],
            "sender": {"domain": domain, "local_part": "jobs", "display_name": "ACME Recruiting"},
            "templates": {
                "de": {"subject": "Einladung zum Gespräch, {{ candidate.name }}",
                       "text": "Hallo {{ candidate.name }},\nwir laden Sie zum Gespräch am {{ fields.date }} ein.",
                       "html": "<p>Hallo {{ candidate.name }}</p>"},
                "en": {"subject": "Interview invitation, {{ candidate.name }}",
                       "text": "Hello {{ candidate.name }}, see you on {{ fields.date }}."},
            },
        }],
    }
    workflow.update(changes)
    return workflow


def stage_event(key, *, stage="interview", lang="de", email_="lea@kandidaten.test", **extra):
    event = {"type": "candidate.stage_changed", "idempotency_key": key,
             "people": {"candidate": {"email": email_, "name": "Lea Brandt", "lang": lang}},
             "fields": {"stage": stage, "date": "3. Dezember"}}
    event.update(extra)
    return event


def subject_of(raw: bytes) -> str:
    return str(make_header(decode_header(email.message_from_bytes(raw)["Subject"])))


def body_of(raw: bytes) -> str:
    message = email.message_from_bytes(raw)
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode()


def verify_acme(api, zone, app):
    records = api.post("/v1/domains", json={"domain": "acme.test"}, headers=auth(api)).json()["records"]
    publish_to_zone(zone, app)
    it_team_publishes(zone, records)
    assert api.post("/v1/domains/acme.test/verify", headers=auth(api)).json()["state"] == "verified"


def test_stage_change_mail_signed_by_the_tenant_then_from_the_default_sender_once_the_cname_is_gone(
        api, zone, smtp_port, dns_server):
    app = api.app_ref
    verify_acme(api, zone, app)
    saved = api.post("/v1/workflows", json=stage_workflow(), headers=auth(api))
    assert saved.status_code == 201, saved.text
    [verdict] = saved.json()["senders"]
    assert verdict["mode"] == "own_domain" and verdict["verdict"] == "verified — signed as acme.test, aligned for DMARC"
    workflow_id, version = saved.json()["id"], saved.json()["version"]

    answer = api.post("/v1/events", json=stage_event("cand-1-stage-3"), headers=auth(api)).json()
    [result] = answer["results"]
    assert result["outcome"] == "sent" and result["lang"] == "de" and result["state"] == "queued"
    assert (result["workflow_id"], result["version"]) == (workflow_id, version)
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    [received] = mx.messages
    assert received.recipients == ("lea@kandidaten.test",)  # addressed to her alone
    assert email.message_from_bytes(received.data)["To"] == "Lea Brandt <lea@kandidaten.test>"
    host, port = dns_server.address.split(":")
    assert dkim_verifies(received.data, host, int(port)) and b"d=acme.test" in received.data
    assert email.message_from_bytes(received.data)["From"] == "ACME Recruiting <jobs@acme.test>"
    assert subject_of(received.data) == "Einladung zum Gespräch, Lea Brandt"
    assert "wir laden Sie zum Gespräch am 3. Dezember ein" in body_of(received.data)

    zone.remove("pb1._domainkey.acme.test", "CNAME")  # the IT team removes a CNAME
    assert api.post("/v1/domains/acme.test/verify", headers=auth(api)).json()["state"] == "broken"
    again = api.post("/v1/events", json=stage_event("cand-1-stage-3-again"), headers=auth(api)).json()
    [result] = again["results"]
    assert result["sender"] == "ACME GmbH via Postbote <notification@platform.test>"
    assert result["sender_note"].startswith("acme.test is not verified (broken)")
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    fallback = email.message_from_bytes(mx.messages[0].data)
    assert fallback["From"] == "ACME GmbH via Postbote <notification@platform.test>"
    assert fallback["Reply-To"] == "ACME Recruiting <jobs@acme.test>"
    assert b"d=platform.test" in mx.messages[0].data and b"d=acme.test" not in mx.messages[0].data
    status = api.get(f"/v1/messages/{result['message_id']}", headers=auth(api)).json()
    assert "not verified (broken)" in status["sender"]["note"]  # the message records why


def test_the_same_event_twice_fires_once(api, smtp_port):
    api.post("/v1/workflows", json=stage_workflow(domain=None), headers=auth(api))
    first = api.post("/v1/events", json=stage_event("cand-2"), headers=auth(api)).json()
    second = api.post("/v1/events", json=stage_event("cand-2"), headers=auth(api)).json()
    assert first["duplicate"] is False and second["duplicate"] is True
    assert second["messages"] == first["messages"] and len(first["messages"]) == 1
    other_tenant = api.post("/v1/events", json=stage_event("cand-2"), headers=auth(api, "globex")).json()
    assert other_tenant["duplicate"] is False  # keys are per tenant
    with Receiver(MX1, smtp_port) as mx:
        run_worker(api.app_ref)
    assert len(mx.messages) == 1


def test_conditions_decide_and_the_answer_says_why_nothing_was_sent(api):
    api.post("/v1/workflows", json=stage_workflow(domain=None), headers=auth(api))
    screening = api.post("/v1/events", json=stage_event("c-3", stage="screening"), headers=auth(api)).json()
    assert [r["outcome"] for r in screening["results"]] == ["condition_false"] and screening["messages"] == []
    no_flow = api.post("/v1/events", json={"type": "offer.sent", "idempotency_key": "o-1"}, headers=auth(api)).json()
    assert [r["outcome"] for r in no_flow["results"]] == ["no_workflow"]
    no_address = api.post("/v1/events", json=stage_event("c-4", email_=None), headers=auth(api)).json()
    assert [r["outcome"] for r in no_address["results"]] == ["recipient_without_address"]
    api.post("/v1/suppressions", json={"address": "lea@kandidaten.test", "reason": "manual"}, headers=auth(api))
    suppressed = api.post("/v1/events", json=stage_event("c-5"), headers=auth(api)).json()
    assert [r["outcome"] for r in suppressed["results"]] == ["recipient_suppressed"]


def test_language_falls_back_to_the_tenants_choice(api, smtp_port):
    api.post("/v1/workflows", json=stage_workflow(domain=None), headers=auth(api))
    assert api.put("/v1/workflow-settings", json={"fallback_language": "en"}, headers=auth(api)).status_code == 200
    french = api.post("/v1/events", json=stage_event("c-6", lang="fr"), headers=auth(api)).json()
    german = api.post("/v1/events", json=stage_event("c-7", lang="de"), headers=auth(api)).json()
    assert [r["lang"] for r in french["results"] + german["results"]] == ["en", "de"]
    bad = api.put("/v1/workflow-settings", json={"fallback_language": "deutsch"}, headers=auth(api))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "language_invalid"


def test_delay_waits_for_its_time_on_the_callers_clock(api, smtp_port):
    app = api.app_ref
    delayed = stage_workflow(domain=None, delay={"field": "fields.first_day", "offset": "-3d", "at": "09:00",
                                                 "timezone": "recipient"})
    api.post("/v1/workflows", json=delayed, headers=auth(api))
    event = stage_event("c-8", fields={"stage": "interview", "date": "x", "first_day": "2030-03-10"})
    event["people"]["candidate"]["timezone"] = "Europe/Berlin"
    answer = api.post("/v1/events", json=event, headers=auth(api)).json()
    [result] = answer["results"]
    assert result["outcome"] == "delayed" and result["due_at"] == "2030-03-07T08:00:00Z"  # 09:00 in Berlin
    deps = Deps(app.engine, app.settings, app.resolver)
    assert asyncio.run(run_due(deps, now=datetime(2030, 3, 7, 7, 59, tzinfo=timezone.utc))) == []
    [sent] = asyncio.run(run_due(deps, now=datetime(2030, 3, 7, 8, 0, tzinfo=timezone.utc)))
    assert sent.outcome.value == "sent" and sent.message_id
    assert asyncio.run(run_due(deps, now=datetime(2030, 3, 8, tzinfo=timezone.utc))) == []  # sent once
    assert claim_job(app.engine, 1, "another-loop") is None  # a job is claimed once, by one loop
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    assert len(mx.messages) == 1


def test_a_message_sent_before_an_edit_names_the_old_version(api):
    app = api.app_ref
    workflow_id = api.post("/v1/workflows", json=stage_workflow(domain=None), headers=auth(api)).json()["id"]
    before = api.post("/v1/events", json=stage_event("c-9"), headers=auth(api)).json()["results"][0]
    edited = stage_workflow(domain=None)
    edited["actions"][0]["templates"]["de"]["subject"] = "Neu: {{ candidate.name }}"
    assert api.put(f"/v1/workflows/{workflow_id}", json=edited, headers=auth(api)).json()["version"] == 2
    after = api.post("/v1/events", json=stage_event("c-10"), headers=auth(api)).json()["results"][0]
    with app.engine.connect() as conn:
        versions = dict(conn.execute(select(workflow_messages.c.message_id, workflow_messages.c.version)).all())
    assert versions == {before["message_id"]: 1, after["message_id"]: 2}
    history = api.get(f"/v1/workflows/{workflow_id}/versions", headers=auth(api)).json()["versions"]
    assert [(v["version"], v["messages"]) for v in history] == [(1, 1), (2, 1)]
    assert "Neu:" not in history[0]["definition"]["actions"][0]["templates"]["de"]["subject"]


def test_disabled_workflows_do_not_fire_and_tenants_never_see_each_others(api):
    workflow_id = api.post("/v1/workflows", json=stage_workflow(domain=None), headers=auth(api)).json()["id"]
    for path in (f"/v1/workflows/{workflow_id}", f"/v1/workflows/{workflow_id}/versions"):
        foreign = api.get(path, headers=auth(api, "globex"))
        assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "workflow_not_found"
    assert api.post(f"/v1/workflows/{workflow_id}/disable", headers=auth(api, "globex")).status_code == 404
    assert api.post(f"/v1/workflows/{workflow_id}/disable", headers=auth(api)).json()["enabled"] is False
    answer = api.post("/v1/events", json=stage_event("c-11"), headers=auth(api)).json()
    assert [r["outcome"] for r in answer["results"]] == ["no_workflow"]
    assert api.post(f"/v1/workflows/{workflow_id}/enable", headers=auth(api)).json()["enabled"] is True


def test_step_two_refuses_another_tenants_domain_and_tells_a_pending_one(api, zone):
    app = api.app_ref
    verify_acme(api, zone, app)
    foreign = api.post("/v1/workflows", json=stage_workflow(), headers=auth(api, "globex"))
    assert foreign.status_code == 422 and foreign.json()["error"]["code"] == "sender_domain_unknown"
    assert "acme" not in foreign.json()["error"]["message"].replace("acme.test", "")  # the owner is not named
    assert api.get("/v1/workflows", headers=auth(api, "globex")).json()["workflows"] == []  # nothing was stored
    api.post("/v1/domains", json={"domain": "globex.test"}, headers=auth(api, "globex"))
    pending = api.post("/v1/workflows", json=stage_workflow(domain="globex.test"), headers=auth(api, "globex")).json()
    [verdict] = pending["senders"]
    assert verdict["mode"] == "default_sender" and verdict["verdict"].startswith("pending: the CNAMEs are not published")
    assert any(r.startswith("pb1._domainkey.globex.test CNAME") for r in verdict["missing_records"])


def test_dry_run_sends_and_records_nothing(api):
    api.post("/v1/workflows", json=stage_workflow(domain=None), headers=auth(api))
    dry = api.post("/v1/events", json={**stage_event("c-12"), "dry_run": True}, headers=auth(api)).json()
    [result] = dry["results"]
    assert dry["dry_run"] is True and result["outcome"] == "would_send" and dry["messages"] == []
    assert result["preview"]["subject"] == "Einladung zum Gespräch, Lea Brandt"
    real = api.post("/v1/events", json=stage_event("c-12"), headers=auth(api)).json()
    assert real["duplicate"] is False and real["results"][0]["outcome"] == "sent"  # the key was not used up


def test_preview_and_test_send(api, smtp_port):
    app = api.app_ref
    workflow_id = api.post("/v1/workflows", json=stage_workflow(domain=None), headers=auth(api)).json()["id"]
    shown = api.post(f"/v1/workflows/{workflow_id}/preview", json={}, headers=auth(api)).json()
    assert {r["lang"] for r in shown["actions"][0]["renders"]} == {"de", "en"}
    given = api.post(f"/v1/workflows/{workflow_id}/preview", json={"event": stage_event("p"), "lang": "en"},
                     headers=auth(api)).json()
    assert given["actions"][0]["renders"][0]["subject"] == "Interview invitation, Lea Brandt"
    test = api.post(f"/v1/workflows/{workflow_id}/test", json={"to": "admin@acme.test", "lang": "de"},
                    headers=auth(api)).json()
    [result] = test["results"]
    assert result["test"] is True and result["recipient"] == "admin@acme.test"
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    [received] = mx.messages
    assert received.recipients == ("admin@acme.test",) and subject_of(received.data).startswith("[TEST] ")
    with app.engine.connect() as conn:
        assert conn.execute(select(workflow_messages.c.test)).scalar() is True


@pytest.mark.parametrize("change, code, line", [
    ({"text": "Hallo\n{% if candidate.name %}\nkein Ende"}, "template_invalid", 2),
    ({"text": "Hallo\n\n{{ candidate.name | nosuchfilter }}"}, "template_invalid", 3),
    ({"html": "{% include '/etc/passwd' %}"}, "template_invalid", 1),
])
def test_a_template_that_does_not_compile_is_refused_with_its_line(api, change, code, line):
    workflow = stage_workflow(domain=None)
    workflow["actions"][0]["templates"]["de"].update(change)
    refused = api.post("/v1/workflows", json=workflow, headers=auth(api))
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == code and error["hint"] and error["details"][0]["line"] == line
    assert error["details"][0]["lang"] == "de"
    assert api.get("/v1/workflows", headers=auth(api)).json()["workflows"] == []


@pytest.mark.parametrize("conditions, where", [
    ([{"field": "fields.stage", "op": "__import__", "value": "x"}], "conditions[0]"),
    ({"any": "not a list"}, "conditions"),
    ([{"field": "fields.stage; drop table", "op": "eq", "value": 1}], "conditions[0]"),
    ([{"field": "fields.stage", "op": "in", "value": "interview"}], "conditions[0]"),
])
def test_bad_conditions_are_refused(api, conditions, where):
    refused = api.post("/v1/workflows", json=stage_workflow(domain=None, conditions=conditions), headers=auth(api))
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "condition_invalid" and error["details"][0]["where"] == where and error["hint"]


@pytest.mark.parametrize("event, code", [
    ({"type": "candidate.hired", "idempotency_key": "k"}, "event_type_unknown"),
    ({"type": "offer.sent", "idempotency_key": "has space"}, "idempotency_key_invalid"),
    ({"type": "offer.sent", "idempotency_key": "k", "people": {"boss": {"email": "a@b.test"}}}, "event_invalid"),
    ({"type": "offer.sent", "idempotency_key": "k", "fields": {"blob": "x" * 70_000}}, "event_too_large"),
])
def test_bad_events_get_a_stable_code(api, event, code):
    refused = api.post("/v1/events", json=event, headers=auth(api))
    assert refused.status_code == 422 and refused.json()["error"]["code"] == code
    assert refused.json()["error"]["hint"]


@pytest.mark.parametrize("name", ["Lea\r\nBcc: victim@example.test", "Lea\u2028Bcc: victim@example.test",
                                  "Lea\x85Bcc: victim@example.test", "Lea\x0bBcc: victim@example.test"])
def test_a_subject_that_renders_a_line_break_is_not_sent(api, name):
    workflow = stage_workflow(domain=None)
    workflow["actions"][0]["templates"]["de"]["subject"] = "Hallo {{ fields.stage }} {{ candidate.name }}"
    api.post("/v1/workflows", json=workflow, headers=auth(api))
    event = stage_event("c-13")  # the name reaches the subject through the template, not as a header
    event["people"]["candidate"]["name"] = name
    [result] = api.post("/v1/events", json=event, headers=auth(api)).json()["results"]
    assert result["outcome"] == "template_failed" and "line break" in result["reason"]


def test_openapi_lists_the_workflow_endpoints(api):
    paths = set(api.get("/openapi.json").json()["paths"])
    assert {"/v1/events", "/v1/workflows", "/v1/workflows/{workflow_id}", "/v1/workflows/{workflow_id}/versions",
            "/v1/workflows/{workflow_id}/enable", "/v1/workflows/{workflow_id}/disable",
            "/v1/workflows/{workflow_id}/preview", "/v1/workflows/{workflow_id}/test"} <= paths




def bulk_workflow():
    workflow = stage_workflow(domain=None, name="Talent newsletter", trigger="candidate.applied", conditions=[])
    workflow["actions"][0]["class"] = "bulk"
    return workflow


def test_one_click_unsubscribe_stops_bulk_mail_only(api, smtp_port, dns_server, zone):
    app = api.app_ref
    api.post("/v1/workflows", json=bulk_workflow(), headers=auth(api))
    api.post("/v1/workflows", json=stage_workflow(domain=None), headers=auth(api))  # transactional
    applied = {**stage_event("a-1"), "type": "candidate.applied"}
    assert api.post("/v1/events", json=applied, headers=auth(api)).json()["results"][0]["outcome"] == "sent"
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    raw = mx.messages[0].data
    message = email.message_from_bytes(raw)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = [part.strip(" <>") for part in message["List-Unsubscribe"].replace("\r\n", "").split(",")]
    assert https.startswith("https://platform.test/v1/unsubscribe/") and mailto.startswith("mailto:unsubscribe@")
    signed = message["DKIM-Signature"].replace("\r\n", "").replace(" ", "").replace("\t", "")
    assert "list-unsubscribe:list-unsubscribe-post" in signed  # RFC 8058 §4: covered by DKIM
    publish_to_zone(zone, app)
    host, port = dns_server.address.split(":")
    assert dkim_verifies(raw, host, int(port))
    assert not dkim_verifies(raw.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
                                         b"List-Unsubscribe-Post: List-Unsubscribe=One-Clack"), host, int(port))

    path = https.removeprefix("https://platform.test")
    page = api.get(path)
    assert page.status_code == 200 and "lea@kandidaten.test" in page.text
    assert api.get("/v1/suppressions", headers=auth(api)).json()["suppressions"] == []  # a GET changes nothing
    done = api.post(path, content=b"List-Unsubscribe=One-Click",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200 and done.json() == {"address": "lea@kandidaten.test", "unsubscribed": True}
    [entry] = api.get("/v1/suppressions", headers=auth(api)).json()["suppressions"]
    assert (entry["address"], entry["reason"]) == ("lea@kandidaten.test", "unsubscribed")
    assert api.get("/v1/suppressions", headers=auth(api, "globex")).json()["suppressions"] == []  # for that tenant only

    again = api.post("/v1/events", json={**stage_event("a-2"), "type": "candidate.applied"}, headers=auth(api)).json()
    assert [r["outcome"] for r in again["results"]] == ["recipient_suppressed"]  # bulk refused at entry
    invitation = api.post("/v1/events", json=stage_event("s-1"), headers=auth(api)).json()
    assert [r["outcome"] for r in invitation["results"]] == ["sent"]  # transactional unaffected
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    assert len(mx.messages) == 1 and "List-Unsubscribe" not in email.message_from_bytes(mx.messages[0].data)


def test_a_forged_or_altered_unsubscribe_link_changes_nothing(api):
    from postbote.workflows import Unsubscribe, make_token

    app = api.app_ref
    genuine = make_token(app.settings.SECRET_KEY, Unsubscribe(1, "lea@kandidaten.test", 1))
    body, mac = genuine.split(".")
    other_body = make_token(app.settings.SECRET_KEY, Unsubscribe(1, "max@kandidaten.test", 1)).split(".")[0]
    forged_key = make_token("not-the-platform-key", Unsubscribe(1, "lea@kandidaten.test", 1))
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    for token in (f"{other_body}.{mac}", forged_key, f"{flipped}.{mac}", f"{body}.{mac[:-1]}", body, "x" * 700):
        answer = api.post(f"/v1/unsubscribe/{token}")
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "unsubscribe_link_invalid", token
        assert api.get(f"/v1/unsubscribe/{token}").status_code == 404
    assert api.get("/v1/suppressions", headers=auth(api)).json()["suppressions"] == []


def test_an_unsubscribe_never_weakens_a_hard_bounce(api):
    from postbote.workflows import Unsubscribe, make_token

    app = api.app_ref
    api.post("/v1/suppressions", json={"address": "lea@kandidaten.test", "reason": "hard_bounce"}, headers=auth(api))
    token = make_token(app.settings.SECRET_KEY, Unsubscribe(1, "lea@kandidaten.test", 1))
    assert api.post(f"/v1/unsubscribe/{token}").status_code == 200
    [entry] = api.get("/v1/suppressions", headers=auth(api)).json()["suppressions"]
    assert entry["reason"] == "hard_bounce"
    api.post("/v1/workflows", json=stage_workflow(domain=None), headers=auth(api))
    invitation = api.post("/v1/events", json=stage_event("s-2"), headers=auth(api)).json()
    assert [r["outcome"] for r in invitation["results"]] == ["recipient_suppressed"]


def test_a_delay_past_the_end_of_the_calendar_is_a_reason_not_a_crash(api):
    api.post("/v1/workflows", json=stage_workflow(domain=None), headers=auth(api))
    late = stage_workflow(domain=None, delay={"field": "fields.first_day", "offset": "1d"})
    api.post("/v1/workflows", json=late, headers=auth(api))
    event = stage_event("c-end", fields={"stage": "interview", "date": "x", "first_day": "9999-12-31"})
    answer = api.post("/v1/events", json=event, headers=auth(api))
    assert answer.status_code == 200
    outcomes = sorted(r["outcome"] for r in answer.json()["results"])
    assert outcomes == ["delay_field_invalid", "sent"]
    again = api.post("/v1/events", json=event, headers=auth(api))
    assert again.status_code == 200 and again.json()["duplicate"] is True  # answered, not stuck


def test_an_event_whose_handling_failed_can_be_posted_again(api, monkeypatch):
    import postbote.workflows.run as run

    api.post("/v1/workflows", json=stage_workflow(domain=None), headers=auth(api))
    real = run._fire

    async def failing(*args, **kwargs):
        raise RuntimeError("the store went away in the middle")

    monkeypatch.setattr(run, "_fire", failing)
    with pytest.raises(RuntimeError):
        api.post("/v1/events", json=stage_event("c-retry"), headers=auth(api))
    monkeypatch.setattr(run, "_fire", real)
    again = api.post("/v1/events", json=stage_event("c-retry"), headers=auth(api))
    assert again.status_code == 200, again.json()  # not 409 event_in_progress for ever
    assert [r["outcome"] for r in again.json()["results"]] == ["sent"]


def test_a_slow_template_does_not_stop_the_event_loop(api):
    from postbote.tenants import get_tenant
    from postbote.workflows import handle_event

    slow = stage_workflow(domain=None)
    slow["actions"][0]["templates"] = {"de": {"subject": "x", "text": "{% for i in range(1000) %}{% for j in range(1000) %}"
                                              "{{ j }}{% endfor %}{% endfor %}"}}
    assert api.post("/v1/workflows", json=slow, headers=auth(api)).status_code in (200, 201)
    app = api.app_ref
    deps = Deps(app.engine, app.settings, app.resolver)

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        tick = asyncio.create_task(ticker())
        await handle_event(deps, get_tenant(app.engine, "acme"), stage_event("c-slow"))
        tick.cancel()
        return ticks

    assert asyncio.run(main()) >= 5  # the render takes its 0.5 s limit; on the loop itself, 0 ticks


def test_digest_five_events_one_mail_listing_five(api, smtp_port):
    app = api.app_ref
    digest = {
        "name": "Absences awaiting approval", "trigger": "absence.requested",
        "actions": [{"recipients": [{"role": "manager"}], "sender": {"domain": None},
                     "digest": {"at": "08:00", "timezone": "Europe/Berlin"},
                     "templates": {"de": {"subject": "{{ count }} Anträge warten auf Sie",
                                          "text": "{% for e in events %}- {{ e.employee.name }}: {{ e.fields.days }} Tage\n"
                                                  "{% endfor %}"}}}],
    }
    assert api.post("/v1/workflows", json=digest, headers=auth(api)).status_code == 201
    monday = datetime(2030, 3, 4, 10, 0, tzinfo=timezone.utc)
    deps = Deps(app.engine, app.settings, app.resolver)
    answers = []
    for i in range(5):
        event = {"type": "absence.requested", "idempotency_key": f"abs-{i}",
                 "occurred_at": (monday.replace(hour=10 + i)).isoformat(),
                 "people": {"manager": {"email": "chefin@kandidaten.test", "name": "Chefin", "lang": "de"},
                            "employee": {"email": f"e{i}@kandidaten.test", "name": f"Person {i}"}},
                 "fields": {"days": i + 1}}
        answers.append(asyncio.run(handle_event(deps, get_tenant(app.engine, "acme"), event, now=monday.replace(hour=10 + i))))
    results = [a["results"][0] for a in answers]
    assert {r["outcome"] for r in results} == {"collected"} and {r["due_at"] for r in results} == {"2030-03-05T07:00:00Z"}
    assert all(a["messages"] == [] for a in answers)
    assert asyncio.run(run_due(deps, now=datetime(2030, 3, 5, 6, 59, tzinfo=timezone.utc))) == []
    [sent] = asyncio.run(run_due(deps, now=datetime(2030, 3, 5, 7, 0, tzinfo=timezone.utc)))
    assert sent.outcome.value == "sent" and sent.recipient == "chefin@kandidaten.test"
    digest_id = int(results[0]["reason"].split()[3].rstrip(","))
    shown = api.get(f"/v1/digests/{digest_id}", headers=auth(api)).json()
    assert shown["message_id"] == sent.message_id and shown["events"] == [a["id"] for a in answers]
    assert api.get(f"/v1/digests/{digest_id}", headers=auth(api, "globex")).status_code == 404
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    [received] = mx.messages
    assert received.recipients == ("chefin@kandidaten.test",)
    assert subject_of(received.data) == "5 Anträge warten auf Sie"
    assert body_of(received.data).splitlines() == [f"- Person {i}: {i + 1} Tage" for i in range(5)]
    sixth = {"type": "absence.requested", "idempotency_key": "abs-6",
             "people": {"manager": {"email": "chefin@kandidaten.test", "lang": "de"}}, "fields": {"days": 1}}
    later = asyncio.run(handle_event(deps, get_tenant(app.engine, "acme"), sixth, now=datetime(2030, 3, 5, 9, 0, tzinfo=timezone.utc)))
    assert later["results"][0]["outcome"] == "collected" and later["results"][0]["due_at"] == "2030-03-06T07:00:00Z"


@pytest.mark.parametrize("change, where", [
    ({"digest": {"window": "10s"}}, "actions[0].digest.window"),
    ({"digest": {"at": "25:00"}}, "actions[0].digest.at"),
    ({"digest": {"every": "1d"}}, "actions[0].digest"),
    ({"digest": {"window": "1d"}, "_delay": True}, "delay"),
])
def test_bad_digests_are_refused(api, change, where):
    workflow = stage_workflow(domain=None)
    change = dict(change)  # the parameters are shared by both stores' runs
    if change.pop("_delay", False):
        workflow["delay"] = {"offset": "1h"}
    workflow["actions"][0].update(change)
    refused = api.post("/v1/workflows", json=workflow, headers=auth(api))
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "workflow_invalid" and refused.json()["error"]["details"][0]["where"] == where


def test_unsubscribe_by_the_mailto_in_the_header(api, smtp_port):
    import smtplib
    from urllib.parse import unquote

    from postbote.inbound import start_inbound

    app = api.app_ref
    api.post("/v1/workflows", json=bulk_workflow(), headers=auth(api))
    api.post("/v1/events", json={**stage_event("m-1"), "type": "candidate.applied"}, headers=auth(api))
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    header = email.message_from_bytes(mx.messages[0].data)["List-Unsubscribe"].replace("\r\n", "")
    mailto = next(p.strip(" <>") for p in header.split(",") if "mailto:" in p).removeprefix("mailto:")
    address, _, query = mailto.partition("?")
    subject = unquote(query.removeprefix("subject="))
    assert address == "unsubscribe@rp.platform.test" and subject.startswith("unsubscribe ")
    controller = start_inbound(app.settings, app.engine, f"{MX3}:{smtp_port}")
    try:
        def mail(subject_line: str) -> None:
            with smtplib.SMTP(MX3, smtp_port, timeout=10) as client:
                client.sendmail("lea@kandidaten.test", [address],
                                f"From: lea@kandidaten.test\r\nTo: {address}\r\nSubject: {subject_line}\r\n\r\nx\r\n".encode())

        mail(subject[:-3] + ("AAA" if not subject.endswith("AAA") else "BBB"))  # altered: nothing happens
        assert api.get("/v1/suppressions", headers=auth(api)).json()["suppressions"] == []
        mail(subject)
        [entry] = api.get("/v1/suppressions", headers=auth(api)).json()["suppressions"]
        assert (entry["address"], entry["reason"]) == ("lea@kandidaten.test", "unsubscribed")
    finally:
        controller.stop()


def test_an_oversized_workflow_is_refused(api):
    workflow = stage_workflow(domain=None)
    workflow["actions"][0]["templates"] = {lang: {"subject": "s", "text": "x" * 60_000, "html": "y" * 60_000}
                                           for lang in ("de", "en", "es", "fr", "it")}
    refused = api.post("/v1/workflows", json=workflow, headers=auth(api))
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "workflow_too_large"


def test_a_delayed_job_that_fails_is_tried_again_later_not_left_running(api, smtp_port, monkeypatch):
    import postbote.workflows.delays as delays

    app = api.app_ref
    api.post("/v1/workflows", json=stage_workflow(domain=None, delay={"offset": "1h"}), headers=auth(api))
    answer = api.post("/v1/events", json=stage_event("c-fail"), headers=auth(api)).json()
    due = datetime.fromisoformat(answer["results"][0]["due_at"].replace("Z", "+00:00"))
    deps = Deps(app.engine, app.settings, app.resolver)
    real = delays._run_job

    async def store_away(*args):
        raise ConnectionError("the store went away")

    monkeypatch.setattr(delays, "_run_job", store_away)
    assert asyncio.run(run_due(deps, now=due)) == []
    monkeypatch.setattr(delays, "_run_job", real)
    assert asyncio.run(run_due(deps, now=due)) == []  # not yet: it waits before the next try
    [sent] = asyncio.run(run_due(deps, now=due + delays.JOB_RETRY_WAIT))
    assert sent.outcome.value == "sent"
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    assert len(mx.messages) == 1
