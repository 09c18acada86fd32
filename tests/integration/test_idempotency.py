"""Idempotency-Key on POST, on SQLite and PostgreSQL: a repeat is answered again and done once (the
mail counted at a real receiver on loopback), another body or a key still running is 409, keys
belong to the caller, stored answers hold no secret in clear, failures free the key, and rows
expire after 24 hours."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from cryptography.exceptions import InvalidTag
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from postbote import idempotency
from postbote.admins import create_admin_key
from postbote.api import app as api_module
from postbote.api import create_api
from postbote.errors import StoreError
from postbote.db.schema import idempotency_keys, messages, utcnow
from postbote.tenants import add_tenant, create_key
from postbote.testing import Receiver
from tests.conftest import MX1, run_worker

MESSAGE = {"from": "ACME HR <hr@acme.test>", "to": ["anna@beispiel.test"], "subject": "Hallo", "text": "Willkommen"}


@pytest.fixture
def api(make_app, zone):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app()
    keys = {name: create_key(app.engine, add_tenant(app.engine, name)) for name in ("acme", "globex")}
    client = TestClient(create_api(app))
    client.app_ref, client.keys = app, keys
    return client


def headers(client, tenant="acme", key="k-1", **more):
    return {"Authorization": f"Bearer {client.keys[tenant]}", "Idempotency-Key": key, **more}


def message_count(app) -> int:
    with app.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(messages)).scalar_one()


def rows(app):
    with app.engine.connect() as conn:
        return conn.execute(select(idempotency_keys)).all()


def test_the_same_post_twice_with_one_key_is_queued_and_delivered_once(api, smtp_port):
    first = api.post("/v1/messages", json=MESSAGE, headers=headers(api))
    # the same body written otherwise (key order) is the same request
    again = api.post("/v1/messages", json=dict(reversed(list(MESSAGE.items()))), headers=headers(api))
    assert first.status_code == again.status_code == 202
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert message_count(api.app_ref) == 1
    with Receiver(MX1, smtp_port) as mx:
        run_worker(api.app_ref)
    assert len(mx.messages) == 1


def test_the_same_key_with_another_body_is_refused(api):
    assert api.post("/v1/messages", json=MESSAGE, headers=headers(api)).status_code == 202
    other = api.post("/v1/messages", json={**MESSAGE, "subject": "Anders"}, headers=headers(api))
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert message_count(api.app_ref) == 1


def test_another_tenant_with_the_same_key_gets_its_own_message(api, smtp_port):
    acme = api.post("/v1/messages", json=MESSAGE, headers=headers(api, "acme"))
    globex = api.post("/v1/messages", json=MESSAGE, headers=headers(api, "globex"))
    assert acme.status_code == globex.status_code == 202
    assert "idempotent-replayed" not in globex.headers and globex.json()["id"] != acme.json()["id"]
    assert api.get(f"/v1/messages/{globex.json()['id']}", headers=headers(api, "globex")).status_code == 200
    with Receiver(MX1, smtp_port) as mx:
        run_worker(api.app_ref)
    assert len(mx.messages) == 2


def test_the_key_is_scoped_to_the_path(api):
    assert api.post("/v1/messages", json=MESSAGE, headers=headers(api)).status_code == 202
    made = api.post("/v1/suppressions", json={"address": "lea@beispiel.test"}, headers=headers(api))
    assert made.status_code == 201 and made.json()["address"] == "lea@beispiel.test"


def test_a_replayed_new_key_is_the_same_key_and_never_stored_in_clear(api):
    first = api.post("/v1/keys", headers=headers(api))
    again = api.post("/v1/keys", headers=headers(api))
    assert first.status_code == again.status_code == 201
    new_key = first.json()["api_key"]
    assert again.json()["api_key"] == new_key and again.headers["idempotent-replayed"] == "true"
    listed = api.get("/v1/keys", headers={"Authorization": f"Bearer {api.keys['acme']}"}).json()
    assert len(listed["keys"]) == 2  # one key made, not two
    [row] = rows(api.app_ref)
    stored = b"|".join(str(v).encode() if not isinstance(v, bytes) else v for v in row)
    assert new_key.encode() not in stored and new_key[3:20].encode() not in stored
    assert api.keys["acme"].encode() not in stored
    # only the caller's own token opens it
    owner = idempotency.Caller.of(api.keys["acme"])
    assert new_key in owner.open(row.lookup, row.answer).decode()
    with pytest.raises(InvalidTag):
        idempotency.Caller.of(api.keys["globex"]).open(row.lookup, row.answer)


def test_admin_tenant_keys_are_replayed_too(api):
    admin = {"Authorization": f"Bearer {create_admin_key(api.app_ref.engine, 'ops')}", "Idempotency-Key": "a-1"}
    first = api.post("/v1/admin/tenants/acme/keys", headers=admin)
    again = api.post("/v1/admin/tenants/acme/keys", headers=admin)
    assert first.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert first.json()["api_key"].encode() not in rows(api.app_ref)[0].answer


def test_a_second_request_while_the_first_runs_is_refused(api, monkeypatch):
    entered, go_on = threading.Event(), threading.Event()
    real_send = api_module.send

    def slow_send(*args, **kwargs):
        entered.set()
        assert go_on.wait(20)
        return real_send(*args, **kwargs)

    monkeypatch.setattr(api_module, "send", slow_send)
    answers = []
    first = threading.Thread(target=lambda: answers.append(api.post("/v1/messages", json=MESSAGE, headers=headers(api))))
    first.start()
    try:
        assert entered.wait(20)
        second = api.post("/v1/messages", json=MESSAGE, headers=headers(api))
        assert second.status_code == 409 and second.json()["error"]["code"] == "idempotency_in_progress"
    finally:
        go_on.set()
        first.join(20)
    assert answers[0].status_code == 202
    third = api.post("/v1/messages", json=MESSAGE, headers=headers(api))
    assert third.headers["idempotent-replayed"] == "true" and third.content == answers[0].content
    assert message_count(api.app_ref) == 1


def test_a_request_that_failed_frees_its_key(api, monkeypatch):
    client = TestClient(api.app, raise_server_exceptions=False)

    def broken(*args, **kwargs):
        raise RuntimeError("the store went away")

    with monkeypatch.context() as failing:
        failing.setattr(api_module, "send", broken)
        failed = client.post("/v1/messages", json=MESSAGE, headers=headers(api))
    assert failed.status_code == 500
    assert rows(api.app_ref) == []
    retried = client.post("/v1/messages", json=MESSAGE, headers=headers(api))
    assert retried.status_code == 202 and "idempotent-replayed" not in retried.headers
    assert message_count(api.app_ref) == 1


def test_a_5xx_answer_frees_its_key(api, monkeypatch):
    def outage(*args, **kwargs):
        raise StoreError("The store cannot be reached.")

    with monkeypatch.context() as failing:
        failing.setattr(api_module, "send", outage)
        failed = api.post("/v1/messages", json=MESSAGE, headers=headers(api))
    assert failed.status_code == 503
    assert rows(api.app_ref) == []
    retried = api.post("/v1/messages", json=MESSAGE, headers=headers(api))
    assert retried.status_code == 202 and "idempotent-replayed" not in retried.headers


def test_a_refusal_is_kept_and_given_again(api):
    bad = {**MESSAGE, "to": ["nobody@nowhere.invalid"]}
    first = api.post("/v1/messages", json=bad, headers=headers(api))
    again = api.post("/v1/messages", json=bad, headers=headers(api))
    assert first.status_code == 422 and again.status_code == 422
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()


def test_a_dead_request_frees_its_key_after_the_lock(api):
    app = api.app_ref
    caller = idempotency.Caller.of(api.keys["acme"])
    lookup, fingerprint = caller.lookup("POST", "/v1/keys", "k-1"), caller.fingerprint(b"", b"")
    assert idempotency.claim(app.engine, lookup, fingerprint).outcome == "new"  # and never finished
    assert api.post("/v1/keys", headers=headers(api)).status_code == 409
    with app.engine.begin() as conn:
        conn.execute(update(idempotency_keys).values(locked_until=utcnow() - timedelta(seconds=1)))
    taken = api.post("/v1/keys", headers=headers(api))
    assert taken.status_code == 201 and "idempotent-replayed" not in taken.headers


@pytest.mark.parametrize("key", ["", "x" * 256, "schlüssel", "tab\there"])
def test_a_malformed_key_is_refused(api, key):
    sent = api.post("/v1/messages", json=MESSAGE, headers=headers(api, key=key.encode("utf-8")))
    assert sent.status_code == 422 and sent.json()["error"]["code"] == "idempotency_key_invalid"
    assert message_count(api.app_ref) == 0


def test_keys_of_printable_ascii_up_to_255_characters_are_taken(api):
    for key in ("a", "~" * 255, "order 42: {ok}"):
        assert api.post("/v1/keys", headers=headers(api, key=key)).status_code == 201


def test_rows_expire_after_24_hours(api):
    app = api.app_ref
    assert api.post("/v1/messages", json=MESSAGE, headers=headers(api)).status_code == 202
    with app.engine.begin() as conn:
        conn.execute(update(idempotency_keys).values(created_at=utcnow() - timedelta(hours=24, seconds=1)))
    again = api.post("/v1/messages", json=MESSAGE, headers=headers(api))
    assert again.status_code == 202 and "idempotent-replayed" not in again.headers
    assert message_count(app) == 2 and len(rows(app)) == 1


def test_an_answer_too_large_to_keep_is_not_done_again(make_app, zone):
    app = make_app(IDEMPOTENCY_MAX_ANSWER_BYTES=1000)
    key = create_key(app.engine, add_tenant(app.engine, "acme"))
    client = TestClient(create_api(app))
    auth = {"Authorization": f"Bearer {key}", "Idempotency-Key": "big"}
    checked = {"addresses": [f"a{i}@nowhere.invalid" for i in range(20)]}
    assert client.post("/v1/addresses/check", json=checked, headers=auth).status_code == 200
    again = client.post("/v1/addresses/check", json=checked, headers=auth)
    assert again.status_code == 409 and again.json()["error"]["code"] == "idempotency_answer_too_large"
    [row] = rows(app)
    assert row.answer is None and row.status == 200


def test_answers_given_before_the_operation_ran_are_not_kept(api):
    """401, 403 and 429 say nothing about the operation: the same key works once they are past."""
    wrong = api.post("/v1/keys", headers={"Authorization": "Bearer pb_made-up", "Idempotency-Key": "k-1"})
    assert wrong.status_code == 401 and rows(api.app_ref) == []
    admin = {"Authorization": f"Bearer {create_admin_key(api.app_ref.engine, 'ops')}"}
    assert api.post("/v1/admin/tenants/acme/suspend", json={"reason": "unpaid"}, headers=admin).status_code == 200
    refused = api.post("/v1/messages", json=MESSAGE, headers=headers(api))
    assert refused.status_code == 403 and rows(api.app_ref) == []
    assert api.post("/v1/admin/tenants/acme/resume", headers=admin).status_code == 200
    sent = api.post("/v1/messages", json=MESSAGE, headers=headers(api))
    assert sent.status_code == 202 and "idempotent-replayed" not in sent.headers


def test_a_batch_is_replayed_whole_and_queued_once(api):
    batch = {"messages": [MESSAGE, {**MESSAGE, "subject": "Zwei"}]}
    first = api.post("/v1/messages/batch", json=batch, headers=headers(api))
    again = api.post("/v1/messages/batch", json=batch, headers=headers(api))
    assert first.status_code == again.status_code == 200 and first.json()["accepted"] == 2
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert message_count(api.app_ref) == 2


def test_the_openapi_document_names_the_header_on_every_post_with_a_key(api):
    doc = api.app.openapi()
    posts = {path: item["post"] for path, item in doc["paths"].items() if "post" in item}
    assert "/v1/keys" in posts and "/v1/admin/tenants/{name}/keys" in posts
    for path, op in posts.items():
        named = any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in op.get("parameters", []))
        assert named == (not path.startswith("/v1/unsubscribe/")), path
