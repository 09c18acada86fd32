"""Running many companies over the API with an admin key: tenants created, listed page by page,
set up and suspended; the partner registry written; and the scopes kept apart (a tenant key does
nothing here, an admin key acts as no tenant). A suspended tenant's mail is kept and waits, and
goes once it is resumed — checked at a real receiver on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import pytest
from fastapi.testclient import TestClient

from postbote.admins import create_admin_key, revoke_admin_key
from postbote.api import create_api
from postbote.queue import pending_count
from postbote.testing import Receiver
from tests.conftest import MX1, run_worker
from tests.integration.test_cli import cli_env, postbote

SIGNIT = {"name": "SignIt", "ips": ["198.51.100.5"], "hosts": ["out.signit.test"], "spf_include": "_spf.signit.test",
          "dkim_domain": "signit.test", "dkim_selector": "signit"}


@pytest.fixture
def platform(make_app, zone):
    """The app, an API client and an admin key made by the CLI, as an operator makes it."""
    app = make_app()
    zone.mail_domain("kunde.test", (10, "mx.kunde.test", MX1))
    return app, TestClient(create_api(app))


def _admin_key(app, tmp_path) -> str:
    made = postbote(cli_env(app), tmp_path, "admin", "key", "create", "hr-backend", "--json")
    return json.loads(made.stdout)["admin_key"]


def _bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def _tenant_with_key(client, admin: dict, name: str, **settings) -> dict:
    made = client.post("/v1/admin/tenants", json={"name": name, "display_name": name.upper(),
                                                  **({"settings": settings} if settings else {})}, headers=admin)
    assert made.status_code == 201, made.text
    key = client.post(f"/v1/admin/tenants/{name}/keys", headers=admin)
    assert key.status_code == 201 and key.json()["api_key"].startswith("pb_")
    return _bearer(key.json()["api_key"])


def _send(client, headers, to=("anna@kunde.test",)):
    return client.post("/v1/messages", json={"from": "HR <hr@platform.test>", "to": list(to), "subject": "Hallo",
                                             "text": "Willkommen"}, headers=headers)


def test_an_admin_key_made_by_the_cli_creates_tenants_whose_keys_send(platform, smtp_port, tmp_path):
    app, client = platform
    admin = _bearer(_admin_key(app, tmp_path))
    acme = _tenant_with_key(client, admin, "acme", language="de", time_zone="Europe/Berlin", hourly_limit=100)
    shown = client.get("/v1/admin/tenants/acme", headers=admin).json()
    assert shown["display_name"] == "ACME" and shown["suspended"] is False
    assert shown["settings"] == {"language": "de", "time_zone": "Europe/Berlin", "sender_policy": "fallback",
                                 "hourly_limit": 100}
    sent = _send(client, acme)
    assert sent.status_code == 202
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    assert len(mx.messages) == 1
    # explanations come in the tenant's default language unless the call asks for another
    story = client.get(f"/v1/messages/{sent.json()['id']}", headers=acme).json()
    assert story["recipients"][0]["explanation"]["lang"] == "de"
    asked = client.get(f"/v1/messages/{sent.json()['id']}", params={"lang": "es"}, headers=acme).json()
    assert asked["recipients"][0]["explanation"]["lang"] == "es"
    # the CLI lists the key by its prefix only
    listed = json.loads(postbote(cli_env(app), tmp_path, "admin", "key", "list", "--json").stdout)
    assert [k["label"] for k in listed] == ["hr-backend"] and all(len(k["prefix"]) == 12 for k in listed)
    assert client.get("/v1/admin/tenants/acme/keys", headers=admin).json()["keys"][0]["active"] is True


def test_tenants_are_listed_page_by_page_with_no_repeat_and_no_gap(platform, tmp_path):
    app, client = platform
    admin = _bearer(create_admin_key(app.engine, "ops"))
    names = [f"firma-{i:02d}" for i in range(7)]
    for name in reversed(names):
        assert client.post("/v1/admin/tenants", json={"name": name}, headers=admin).status_code == 201
    seen, cursor, pages = [], None, 0
    while True:
        page = client.get("/v1/admin/tenants", params={"limit": 3, **({"cursor": cursor} if cursor else {})},
                          headers=admin).json()
        seen += [t["name"] for t in page["tenants"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names and pages == 3
    bad = client.get("/v1/admin/tenants", params={"cursor": "%%%"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "cursor_invalid"
    assert client.get("/v1/admin/tenants", params={"limit": 0}, headers=admin).json()["error"]["code"] == "limit_invalid"


def test_scopes_stay_apart(platform, tmp_path):
    app, client = platform
    key = create_admin_key(app.engine, "ops")
    admin = _bearer(key)
    acme = _tenant_with_key(client, admin, "acme")
    # a tenant key on an admin operation: 403, whatever the operation
    for method, path in (("get", "/v1/admin/tenants"), ("post", "/v1/admin/tenants/acme/keys"),
                         ("post", "/v1/admin/partners"), ("get", "/v1/admin/partners")):
        refused = client.request(method, path, headers=acme, json=SIGNIT if method == "post" else None)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_key_required", path
    # an admin key acts as no tenant
    refused = _send(client, admin)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "tenant_key_required"
    assert client.get("/v1/messages", headers=admin).status_code == 403
    # no key, a made-up admin key, a revoked admin key: 401
    assert client.get("/v1/admin/tenants").status_code == 401
    assert client.get("/v1/admin/tenants", headers=_bearer("pba_" + "x" * 43)).status_code == 401
    assert client.get("/v1/messages", headers=_bearer("pba_" + "x" * 43)).status_code == 401
    revoke_admin_key(app.engine, key[:12])
    assert client.get("/v1/admin/tenants", headers=admin).status_code == 401


def test_a_suspended_tenant_is_refused_and_its_queued_mail_waits_until_it_is_resumed(platform, smtp_port, tmp_path):
    app, client = platform
    admin = _bearer(create_admin_key(app.engine, "ops"))
    acme = _tenant_with_key(client, admin, "acme")
    globex = _tenant_with_key(client, admin, "globex")
    queued = _send(client, acme)
    assert queued.status_code == 202
    assert _send(client, globex).status_code == 202
    suspended = client.post("/v1/admin/tenants/acme/suspend", json={"reason": "contract ended"}, headers=admin)
    assert suspended.status_code == 200 and suspended.json()["suspended"] is True
    refused = _send(client, acme)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "tenant_suspended"
    assert "contract ended" in refused.json()["error"]["message"]
    assert client.get("/v1/messages", headers=acme).status_code == 403
    with Receiver(MX1, smtp_port) as mx:
        stats = run_worker(app, timeout=5)  # until_done: a suspended tenant's mail is no work to wait for
    assert stats.seconds < 4.5, "the worker waited for mail it may not send"
    assert len(mx.messages) == 1 and b"globex" in mx.messages[0].data.lower()  # the other tenant's mail went
    assert pending_count(app.engine) == 0
    # kept, not lost: resume, and it goes
    assert client.post("/v1/admin/tenants/acme/resume", headers=admin).json()["suspended"] is False
    assert client.get(f"/v1/messages/{queued.json()['id']}", headers=acme).json()["recipients"][0]["state"] == "queued"
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    assert len(mx.messages) == 1 and b"acme" in mx.messages[0].data.lower()


def test_the_hourly_limit_refuses_what_would_pass_it_and_stores_nothing(platform, tmp_path):
    app, client = platform
    admin = _bearer(create_admin_key(app.engine, "ops"))
    acme = _tenant_with_key(client, admin, "acme", hourly_limit=3)
    globex = _tenant_with_key(client, admin, "globex", hourly_limit=3)
    assert _send(client, acme, to=["a@kunde.test", "b@kunde.test"]).status_code == 202
    over = _send(client, acme, to=["c@kunde.test", "d@kunde.test"])
    assert over.status_code == 429 and over.json()["error"]["code"] == "hourly_limit_reached"
    assert 1 <= int(over.headers["Retry-After"]) <= 3600
    assert _send(client, acme, to=["c@kunde.test"]).status_code == 202  # exactly at the limit
    assert _send(client, acme, to=["e@kunde.test"]).status_code == 429
    assert _send(client, globex, to=["x@kunde.test", "y@kunde.test", "z@kunde.test"]).status_code == 202  # its own
    assert len(client.get("/v1/messages", headers=acme).json()["messages"]) == 2
    lifted = client.patch("/v1/admin/tenants/acme", json={"hourly_limit": None}, headers=admin)
    assert lifted.json()["settings"]["hourly_limit"] is None
    assert _send(client, acme, to=["e@kunde.test"]).status_code == 202


@pytest.mark.parametrize("change, code", [
    ({"time_zone": "Mars/Olympus"}, "time_zone_invalid"),
    ({"language": "deutsch"}, "language_invalid"),
    ({"sender_policy": "sometimes"}, "policy_invalid"),
    ({"hourly_limit": 0}, "hourly_limit_invalid"),
    ({"display_name": "ACME\r\nBcc: x@evil.test"}, "header_injection"),
])
def test_a_bad_setting_is_refused_and_nothing_of_the_change_is_written(platform, change, code):
    app, client = platform
    admin = _bearer(create_admin_key(app.engine, "ops"))
    _tenant_with_key(client, admin, "acme")
    before = client.get("/v1/admin/tenants/acme", headers=admin).json()
    # the good settings beside the bad one are not written either
    refused = client.patch("/v1/admin/tenants/acme", json={"language": "es", "time_zone": "Europe/Madrid",
                                                           "hourly_limit": 50, **change}, headers=admin)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == code
    assert client.get("/v1/admin/tenants/acme", headers=admin).json() == before


def test_the_tenant_time_zone_places_a_delay_at_local_time_when_the_recipient_names_none(platform):
    app, client = platform
    admin = _bearer(create_admin_key(app.engine, "ops"))
    acme = _tenant_with_key(client, admin, "acme", time_zone="Europe/Berlin")
    workflow = {"name": "Erinnerung", "trigger": "absence.requested",
                "delay": {"field": "fields.first_day", "offset": "-1d", "at": "09:00", "timezone": "recipient"},
                "actions": [{"recipients": [{"role": "manager"}], "sender": {"domain": None},
                             "templates": {"de": {"subject": "Antrag", "text": "Bitte prüfen"}}}]}
    made = client.post("/v1/workflows", json=workflow, headers=acme)
    assert made.status_code == 201, made.text
    event = {"type": "absence.requested", "idempotency_key": "abs-1", "fields": {"first_day": "2030-12-05"},
             "people": {"manager": {"email": "chef@kunde.test"}}}
    answer = client.post("/v1/events", json=event, headers=acme)
    assert answer.status_code in (200, 201, 202), answer.text
    [result] = answer.json()["results"]
    # 09:00 in Berlin on 4 December (winter time, UTC+1) is 08:00 UTC
    assert result["outcome"] == "delayed" and result["due_at"] == "2030-12-04T08:00:00Z", result


def test_the_partner_registry_is_written_over_the_api_and_read_by_every_tenant(platform, zone):
    app, client = platform
    admin = _bearer(create_admin_key(app.engine, "ops"))
    acme = _tenant_with_key(client, admin, "acme")
    made = client.post("/v1/admin/partners", json=SIGNIT, headers=admin)
    assert made.status_code == 201 and made.json() == SIGNIT
    assert client.post("/v1/admin/partners", json=SIGNIT, headers=admin).json()["error"]["code"] == "partner_exists"
    assert client.get("/v1/partners", headers=acme).json()["partners"] == [SIGNIT]
    bad = client.post("/v1/admin/partners", json={**SIGNIT, "name": "Other", "ips": ["300.1.1.1"]}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "partner_invalid"
    changed = {k: v for k, v in SIGNIT.items() if k != "name"} | {"spf_include": "spf.signit-neu.test"}
    assert client.put("/v1/admin/partners/SignIt", json=changed, headers=admin).status_code == 200
    assert client.get("/v1/partners", headers=acme).json()["partners"][0]["spf_include"] == "spf.signit-neu.test"
    # the tenant's domain check asks for the new include from now on
    client.post("/v1/domains", json={"domain": "acme.test"}, headers=acme)
    zone.add("acme.test", "TXT", '"v=spf1 include:_spf.signit.test -all"')
    [verdict] = client.get("/v1/domains/acme.test/check", headers=acme).json()["partners"]
    assert verdict["spf"] == "include_missing" and "include:spf.signit-neu.test" in verdict["fix"]
    assert client.put("/v1/admin/partners/Nobody", json=changed, headers=admin).json()["error"]["code"] == \
        "partner_not_found"
    assert client.delete("/v1/admin/partners/SignIt", headers=admin).json() == {"name": "SignIt", "removed": True}
    assert client.get("/v1/partners", headers=acme).json()["partners"] == []
    assert client.delete("/v1/admin/partners/SignIt", headers=admin).status_code == 404
