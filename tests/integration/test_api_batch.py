"""POST /v1/messages/batch: many messages in one request, each answered on its own, in order —
accepted ones delivered, malformed or refused ones refused alone; on both stores."""

from __future__ import annotations

import email

from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from postbote.api import create_api
from postbote.tenants import add_tenant, create_key
from postbote.testing import Receiver
from tests.conftest import MX1, run_worker


def message(n: int, to: str | None = None) -> dict:
    return {"from": "ACME HR <hr@acme.test>", "to": [to or f"person{n}@beispiel.test"],
            "subject": f"Einladung {n}", "text": "Hallo"}


def client_for(make_app, zone, **settings):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app(**settings)
    keys = {name: create_key(app.engine, add_tenant(app.engine, name)) for name in ("acme", "globex")}
    return app, TestClient(create_api(app)), {n: {"Authorization": f"Bearer {k}"} for n, k in keys.items()}


def test_each_message_of_a_batch_is_answered_on_its_own_in_order(make_app, zone, smtp_port):
    app, api, auth = client_for(make_app, zone)
    batch = [message(0), message(1), {"from": "hr@acme.test", "subject": "no recipient"},  # malformed
             message(3, to="kein-at-zeichen"), message(4)]
    answer = api.post("/v1/messages/batch", json={"messages": batch}, headers=auth["acme"])
    assert answer.status_code == 200
    body = answer.json()
    assert (body["accepted"], body["refused"]) == (3, 2)
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3, 4]
    assert [r["status"] for r in body["results"]] == [202, 202, 422, 422, 202]
    assert body["results"][2]["error"]["code"] == "request_invalid"
    assert body["results"][3]["error"]["code"] == "recipients_refused"
    ids = [r["message"]["id"] for r in body["results"] if r["status"] == 202]
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    assert sorted(email.message_from_bytes(m.data)["Subject"] for m in mx.messages) == ["Einladung 0", "Einladung 1", "Einladung 4"]
    for message_id in ids:  # each accepted message is the tenant's own, with its own status
        status = api.get(f"/v1/messages/{message_id}", headers=auth["acme"]).json()
        assert [r["state"] for r in status["recipients"]] == ["delivered"]
        assert api.get(f"/v1/messages/{message_id}", headers=auth["globex"]).status_code == 404


def test_a_batch_over_the_limit_is_refused_whole_with_the_error_object(make_app, zone):
    _, api, auth = client_for(make_app, zone, BATCH_MAX_MESSAGES=3)
    answer = api.post("/v1/messages/batch", json={"messages": [message(n) for n in range(4)]}, headers=auth["acme"])
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "batch_too_large"
    assert api.post("/v1/messages/batch", json={"messages": [message(n) for n in range(3)]},
                    headers=auth["acme"]).json()["accepted"] == 3


def test_a_batch_needs_a_key(make_app, zone):
    _, api, _ = client_for(make_app, zone)
    answer = api.post("/v1/messages/batch", json={"messages": [message(0)]})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthorized"


def test_a_message_that_fails_to_be_stored_fails_alone(make_app, zone, monkeypatch):
    app, api, auth = client_for(make_app, zone)
    real = app.acceptor.enqueue

    def flaky(tenant_id, item, *, lifetime):
        if "Einladung 1" in item.message.subject:
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))
        return real(tenant_id, item, lifetime=lifetime)

    monkeypatch.setattr(app.acceptor, "enqueue", flaky)
    body = api.post("/v1/messages/batch", json={"messages": [message(n) for n in range(3)]}, headers=auth["acme"]).json()
    assert [r["status"] for r in body["results"]] == [202, 500, 202]
    assert body["results"][1]["error"]["code"] == "internal_error"
