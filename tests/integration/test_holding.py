"""Held mail in every face, and the ways out: release (sender chosen again then), cancel, release
by itself once the domain is verified, expiry after MAX_LIFETIME — on SQLite and PostgreSQL, with
the mail that finally leaves checked at a real receiver."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from postbote.api import create_api
from postbote.compose import Draft
from postbote.db.schema import utcnow
from postbote.domain_service import add, recheck_all, verify
from postbote.holding import expire_held
from postbote.sending import send
from postbote.tenants import add_tenant, create_key, get_tenant, set_sender_policy
from postbote.testing import Receiver
from tests.conftest import MX1, run_worker
from tests.integration.test_cli import cli_env, postbote
from tests.support.mail import dkim_verifies, it_team_publishes, publish_to_zone


@pytest.fixture
def held_setup(make_app, zone):
    def build(**settings):
        app = make_app(**settings)
        acme = add_tenant(app.engine, "acme", "ACME GmbH")
        add_tenant(app.engine, "globex", "Globex AG")
        zone.mail_domain("kunde.test", (10, "mx.kunde.test", MX1))
        records = add(app, acme.id, "acme.test")["records"]
        set_sender_policy(app.engine, acme, "hold")
        return app, get_tenant(app.engine, "acme"), records
    return build


def _held(app, tenant, subject="Vertrag"):
    accepted = send(app.engine, app.settings, tenant, Draft("HR <hr@acme.test>", ["anna@kunde.test"], subject, "Text",
                                                            reply_to="Personal <personal@acme.test>"))
    assert [s.value for _, s in accepted.recipients] == ["held"]
    return accepted.id


def _client(app):
    keys = {name: create_key(app.engine, get_tenant(app.engine, name)) for name in ("acme", "globex")}
    client = TestClient(create_api(app))
    return client, {name: {"Authorization": f"Bearer {key}"} for name, key in keys.items()}


def test_a_held_message_tells_why_and_what_releases_it_in_every_face(held_setup, tmp_path):
    app, acme, _ = held_setup()
    message_id = _held(app, acme)
    env = cli_env(app)
    for lang, word in (("en", "held"), ("de", "zurückgehalten"), ("es", "retenido")):
        status = json.loads(postbote(env, tmp_path, "status", message_id, "--json", "--lang", lang).stdout)
        explanation = status["recipients"][0]["explanation"]
        assert status["recipients"][0]["state"] == "held" and word in explanation["status"]
        assert "acme.test" in explanation["cause"]
        assert f"postbote message release {message_id}" in explanation["fix"]
        assert f"postbote message cancel {message_id}" in explanation["fix"]
        assert status["hold"]["reason"].endswith("held by the tenant's policy")
    for command in (["status", message_id], ["explain", message_id]):
        shown = postbote({**env, "COLUMNS": "200"}, tmp_path, *command)
        assert "Traceback" not in shown.stderr
        assert "held" in shown.stdout and f"postbote message release {message_id}" in shown.stdout
    client, headers = _client(app)
    answer = client.get(f"/v1/messages/{message_id}", params={"lang": "de"}, headers=headers["acme"])
    assert answer.status_code == 200
    assert answer.json()["hold"]["release"] == f"POST /v1/messages/{message_id}/release"
    assert "sobald acme.test bestätigt ist" in answer.json()["recipients"][0]["explanation"]["fix"].lower()


def test_release_by_hand_sends_from_the_sender_chosen_then(held_setup, smtp_port, dns_server):
    app, acme, _ = held_setup()
    message_id = _held(app, acme)
    client, headers = _client(app)
    assert client.post(f"/v1/messages/{message_id}/release", headers=headers["globex"]).status_code == 404
    released = client.post(f"/v1/messages/{message_id}/release", headers=headers["acme"])
    assert released.status_code == 200, released.text
    assert released.json()["released"] == ["anna@kunde.test"]
    again = client.post(f"/v1/messages/{message_id}/release", headers=headers["acme"])
    assert again.status_code == 409 and again.json()["error"]["code"] == "message_not_held"
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    assert len(mx.messages) == 1
    received = mx.messages[0]
    parsed = email.message_from_bytes(received.data, policy=email.policy.default)
    # acme.test is not verified: never in its name; from the platform's default sender instead.
    assert parsed["From"] == "ACME GmbH via Postbote <notification@platform.test>"
    assert parsed["Reply-To"] == "Personal <personal@acme.test>"
    assert parsed["Subject"] == "Vertrag" and parsed.get_content().strip() == "Text"
    assert received.mail_from == f"bounces+{message_id}@rp.platform.test"
    assert b"d=platform.test" in received.data and b"d=acme.test" not in received.data
    host, port = dns_server.address.split(":")
    status = client.get(f"/v1/messages/{message_id}", headers=headers["acme"]).json()
    assert status["recipients"][0]["state"] == "delivered" and status["hold"] is None


def test_verification_releases_held_mail_in_the_tenants_own_name(held_setup, zone, smtp_port, dns_server):
    app, acme, records = held_setup()
    first, second = _held(app, acme, "eins"), _held(app, acme, "zwei")
    publish_to_zone(zone, app)
    it_team_publishes(zone, records)
    result = verify(app, "acme.test", acme.id)
    assert result["state"] == "verified" and sorted(result["released"]) == sorted([first, second])
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    assert sorted(email.message_from_bytes(m.data)["Subject"] for m in mx.messages) == ["eins", "zwei"]
    host, port = dns_server.address.split(":")
    for received in mx.messages:
        parsed = email.message_from_bytes(received.data, policy=email.policy.default)
        assert parsed["From"] == "HR <hr@acme.test>" and received.mail_from.endswith("@pbmail.acme.test")
        assert b"d=acme.test" in received.data and dkim_verifies(received.data, host, int(port))
        assert len(parsed.get_all("DKIM-Signature")) == 1


def test_the_scheduled_recheck_releases_too_and_the_setting_can_switch_it_off(held_setup, zone):
    import asyncio

    from postbote.app import App
    from postbote.queue import message_status

    app, acme, records = held_setup(RELEASE_HELD_ON_VERIFY=False)
    message_id = _held(app, acme)
    publish_to_zone(zone, app)
    it_team_publishes(zone, records)
    assert verify(app, "acme.test", acme.id)["released"] == []
    asyncio.run(recheck_all(app))
    assert message_status(app.engine, message_id).recipients[0].state == "held"  # switched off: stays held
    on = App(app.settings.model_copy(update={"RELEASE_HELD_ON_VERIFY": True}))
    try:
        asyncio.run(recheck_all(on))  # what serve runs every DOMAIN_RECHECK_INTERVAL
        assert message_status(on.engine, message_id).recipients[0].state == "queued"
    finally:
        on.close()


def test_cancel_and_expiry(held_setup, tmp_path):
    app, acme, _ = held_setup(MAX_LIFETIME="1h")
    cancelled, expiring = _held(app, acme, "weg"), _held(app, acme, "alt")
    env = cli_env(app)
    out = json.loads(postbote(env, tmp_path, "message", "cancel", cancelled, "--json").stdout)
    assert out == {"id": cancelled, "cancelled": ["anna@kunde.test"]}
    again = postbote(env, tmp_path, "message", "cancel", cancelled, "--json", check=False)
    assert again.returncode == 2 and json.loads(again.stdout)["error"]["code"] == "message_not_cancellable"
    release = postbote(env, tmp_path, "message", "release", cancelled, check=False)
    assert release.returncode == 2 and "error[message_not_held]" in release.stderr
    assert expire_held(app.engine) == 0  # not old enough yet
    assert expire_held(app.engine, now=utcnow() + timedelta(hours=1, seconds=1)) == 1
    assert expire_held(app.engine, now=utcnow() + timedelta(hours=2)) == 0  # once
    states = {m["id"]: m["recipients"][0]["state"] for m in
              json.loads(postbote(env, tmp_path, "message", "list", "--json").stdout)["messages"]}
    assert states == {cancelled: "cancelled", expiring: "expired"}
    assert run_worker(app, timeout=3).claimed == 0
    story = json.loads(postbote(env, tmp_path, "status", cancelled, "--json").stdout)
    assert story["recipients"][0]["explanation"]["status"].startswith("Not sent: the message was cancelled")


def test_released_copies_still_name_only_their_recipient(held_setup, zone, smtp_port):
    app, acme, _ = held_setup()
    zone.mail_domain("firma.test", (10, "mx.firma.test", MX1))
    accepted = send(app.engine, app.settings, acme, Draft("hr@acme.test", ["anna@kunde.test", "ben@firma.test"], "s", "t"))
    client, headers = _client(app)
    assert client.post(f"/v1/messages/{accepted.id}/release", headers=headers["acme"]).status_code == 200
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    assert len(mx.messages) == 2
    for received in mx.messages:
        parsed = email.message_from_bytes(received.data, policy=email.policy.default)
        assert parsed["To"] == received.recipients[0] and parsed["From"].endswith("<notification@platform.test>")
        other = ({"anna@kunde.test", "ben@firma.test"} - {received.recipients[0]}).pop()
        assert other.encode() not in received.data and len(parsed.get_all("DKIM-Signature")) == 1
