"""The REST API: keys, sending, status, tenant isolation and error bodies, on both stores."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from postbote.api import create_api
from postbote.queue import pending_count
from postbote.tenants import add_tenant, create_key
from postbote.testing import Receiver
from tests.conftest import MX1, run_worker


@pytest.fixture
def api(make_app, zone):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app()
    keys = {name: create_key(app.engine, add_tenant(app.engine, name)) for name in ("acme", "globex")}
    client = TestClient(create_api(app))
    client.app_ref = app
    client.keys = keys
    return client


def auth(client, tenant):
    return {"Authorization": f"Bearer {client.keys[tenant]}"}


MESSAGE = {"from": "ACME HR <hr@acme.test>", "to": ["anna@beispiel.test", "bob@beispiel.test"],
           "subject": "Ihr erster Arbeitstag", "text": "Willkommen!", "html": "<p>Willkommen!</p>"}


def test_send_then_status_after_delivery(api, smtp_port):
    response = api.post("/v1/messages", json=MESSAGE, headers=auth(api, "acme"))
    assert response.status_code == 202
    body = response.json()
    assert body["recipients"] == [{"address": "anna@beispiel.test", "state": "queued"},
                                  {"address": "bob@beispiel.test", "state": "queued"}]
    with Receiver(MX1, smtp_port):
        run_worker(api.app_ref)
    status = api.get(f"/v1/messages/{body['id']}", headers=auth(api, "acme")).json()
    assert status["subject"] == "Ihr erster Arbeitstag"
    assert [r["state"] for r in status["recipients"]] == ["delivered", "delivered"]
    attempt = status["recipients"][0]["history"][0]
    assert attempt["reply_code"] == 250 and attempt["mx_host"] == "mx1.beispiel.test"
    assert any(line.startswith("> RCPT TO:") for line in attempt["transcript"])


def test_keys_are_required_and_checked(api):
    missing = api.post("/v1/messages", json=MESSAGE)
    wrong = api.post("/v1/messages", json=MESSAGE, headers={"Authorization": "Bearer pb_not-a-key"})
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_tenant_cannot_see_another_tenants_message(api):
    message_id = api.post("/v1/messages", json=MESSAGE, headers=auth(api, "acme")).json()["id"]
    foreign = api.get(f"/v1/messages/{message_id}", headers=auth(api, "globex"))
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "message_not_found"
    assert api.get(f"/v1/messages/{message_id}", headers=auth(api, "acme")).status_code == 200


@pytest.mark.parametrize("change, code", [
    ({"subject": "Hallo\r\nBcc: victim@example.test"}, "header_injection"),
    ({"to": ["not-an-address"]}, "recipients_refused"),
    ({"to": ["anna@nowhere.test"]}, "recipients_refused"),
    ({"to": []}, "request_invalid"),  # no recipient in to, cc or bcc
    ({"subject": ""}, "message_invalid"),
    ({"attachments": []}, "request_invalid"),
])
def test_bad_input_gets_a_stable_code_and_a_hint_and_nothing_is_stored(api, change, code):
    response = api.post("/v1/messages", json={**MESSAGE, **change}, headers=auth(api, "acme"))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["hint"]
    if code == "recipients_refused":
        [detail] = error["details"]
        assert detail["reason"] in ("syntax_invalid", "domain_not_found") and detail["hint"]
    assert pending_count(api.app_ref.engine) == 0


def test_openapi_documents_the_endpoints(api):
    spec = api.get("/openapi.json").json()
    assert {"/v1/messages", "/v1/messages/{message_id}"} <= set(spec["paths"])
    assert api.get("/v1/health").json()["status"] == "ok"
