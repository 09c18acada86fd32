"""The authorisation matrix, generated from the OpenAPI document so that no operation can be
left out: every operation under /v1 is either named public below or checked here — no key, a
revoked key, a made-up key (of either kind) are 401; a tenant key on an admin operation and an
admin key on a tenant operation are 403; another tenant's key on the first tenant's message,
domain, workflow, event, digest, key or suppression is 404 and no answer to it carries any of the
first tenant's data. On SQLite and PostgreSQL."""

from __future__ import annotations

import secrets

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from postbote.admins import create_admin_key, revoke_admin_key
from postbote.api import create_api
from postbote.api.contract import documented_codes
from postbote.db.schema import workflow_digests
from postbote.replies import explanation_ids
from postbote.tenants import add_tenant, create_key, get_tenant, revoke_key
from postbote.workflows.unsubscribe import Unsubscribe, make_token
from tests.conftest import MX1

# Answered without any key, by design: the health check for load balancers, and the RFC 8058
# one-click unsubscribe link of bulk mail, whose HMAC signature is its authority.
PUBLIC = {
    ("GET", "/v1/health"),
    ("GET", "/v1/unsubscribe/{token}"),
    ("POST", "/v1/unsubscribe/{token}"),
}

# Path parameters that name a resource of one tenant: another tenant's key gets 404 for them.
TENANT_RESOURCES = {"message_id", "domain", "workflow_id", "event_id", "digest_id", "address", "prefix", "endpoint_id",
                    "call_id"}

# Required query parameters, by name.
QUERY = {"reason": "matrix check"}

# Minimal valid bodies, so that authorisation decides and not validation; ``r`` holds the first
# tenant's resources. An operation that needs a body and has none here fails the matrix.
BODIES = {
    ("POST", "/v1/messages"): lambda r: {"from": "HR <hr@platform.test>", "to": ["neutral@kunde.test"],
                                        "subject": "Hallo", "text": "Hallo"},
    ("POST", "/v1/messages/batch"): lambda r: {"messages": [{"from": "HR <hr@platform.test>", "to": ["neutral@kunde.test"],
                                                            "subject": "Hallo", "text": "Hallo"}]},
    ("POST", "/v1/explanations/{explanation_id}/feedback"): lambda r: {"helpful": True, "message_id": r["message_id"]},
    ("POST", "/v1/domains"): lambda r: {"domain": f"neutral-{secrets.token_hex(3)}.test"},
    ("POST", "/v1/addresses/check"): lambda r: {"addresses": ["neutral@kunde.test"]},
    ("POST", "/v1/suppressions"): lambda r: {"address": f"neutral-{secrets.token_hex(3)}@kunde.test"},
    ("POST", "/v1/events"): lambda r: _event(f"neutral-{secrets.token_hex(3)}"),
    ("POST", "/v1/workflows"): lambda r: _workflow("Neutral workflow"),
    ("PUT", "/v1/workflows/{workflow_id}"): lambda r: _workflow("Neutral workflow, edited"),
    ("POST", "/v1/workflows/{workflow_id}/test"): lambda r: {"to": "neutral@kunde.test"},
    ("PUT", "/v1/workflow-settings"): lambda r: {"fallback_language": "en"},
    ("POST", "/v1/admin/tenants"): lambda r: {"name": f"t{secrets.token_hex(4)}"},
    ("PATCH", "/v1/admin/tenants/{name}"): lambda r: {"display_name": "Renamed"},
    ("POST", "/v1/admin/tenants/{name}/suspend"): lambda r: {"reason": "matrix check"},
    ("POST", "/v1/admin/partners"): lambda r: {"name": f"P{secrets.token_hex(4)}", "ips": ["198.51.100.7"]},
    ("PUT", "/v1/admin/partners/{name}"): lambda r: {"ips": ["198.51.100.8"]},
    ("POST", "/v1/webhooks"): lambda r: {"url": "https://hooks.neutral.test/in", "events": ["*"]},
    ("PATCH", "/v1/webhooks/{endpoint_id}"): lambda r: {"description": "changed by the matrix"},
}

WORKFLOW_NAME = "Acme matrix onboarding 7f3a"


def _workflow(name: str, **changes) -> dict:
    workflow = {"name": name, "trigger": "candidate.stage_changed",
                "actions": [{"recipients": [{"role": "candidate"}], "sender": {"domain": None},
                             "templates": {"en": {"subject": "Hello {{ candidate.name }}", "text": "See you."}}}]}
    workflow.update(changes)
    return workflow


def _event(key: str, **changes) -> dict:
    event = {"type": "candidate.stage_changed", "idempotency_key": key,
             "people": {"candidate": {"email": "lea.acme.7f3a@kunde.test", "name": "Lea"}}}
    event.update(changes)
    return event


def operations(api) -> list[tuple[str, str, dict]]:
    doc = api.openapi()
    return [(method.upper(), path, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def _bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def world(make_app, zone):
    """Two tenants and an admin; the first tenant owns one of everything the API names by id."""
    zone.mail_domain("kunde.test", (10, "mx.kunde.test", MX1))
    app = make_app()
    client = TestClient(create_api(app))
    acme = add_tenant(app.engine, "acme", "Acme Matrix GmbH")
    keys = {"acme": create_key(app.engine, acme), "globex": create_key(app.engine, add_tenant(app.engine, "globex"))}
    a = _bearer(keys["acme"])
    revoked = create_key(app.engine, acme)
    revoke_key(app.engine, acme, revoked[:10])
    admin = create_admin_key(app.engine, "ops")
    revoked_admin = create_admin_key(app.engine, "old")
    revoke_admin_key(app.engine, revoked_admin[:12])

    sent = client.post("/v1/messages", json={"from": "HR <hr@platform.test>", "to": ["anna.acme.7f3a@kunde.test"],
                                             "subject": "Acme secret subject 7f3a", "text": "x"}, headers=a)
    assert sent.status_code == 202, sent.text
    domain = client.post("/v1/domains", json={"domain": "acme-matrix.test"}, headers=a)
    assert domain.status_code == 201, domain.text
    workflow = client.post("/v1/workflows", json=_workflow(WORKFLOW_NAME), headers=a)
    assert workflow.status_code == 201, workflow.text
    event = client.post("/v1/events", json=_event("acme-event-7f3a"), headers=a)
    assert event.status_code == 200, event.text
    digest = _workflow("Acme digest 7f3a", trigger="absence.requested")
    digest["actions"][0].update(recipients=[{"role": "manager"}], digest={"window": "1d"})
    assert client.post("/v1/workflows", json=digest, headers=a).status_code == 201
    collected = client.post("/v1/events", json={"type": "absence.requested", "idempotency_key": "acme-absence-7f3a",
                                                "people": {"manager": {"email": "chefin.acme.7f3a@kunde.test"}}}, headers=a)
    assert collected.json()["results"][0]["outcome"] == "collected", collected.text
    with app.engine.connect() as conn:
        digest_id = conn.execute(select(workflow_digests.c.id).where(workflow_digests.c.tenant_id == acme.id)).scalar_one()
    suppression = client.post("/v1/suppressions", json={"address": "lea.suppressed.7f3a@kunde.test"}, headers=a)
    assert suppression.status_code == 201, suppression.text
    spare = client.post("/v1/keys", headers=a).json()["prefix"]
    hook = client.post("/v1/webhooks", json={"url": "https://hooks.acme-matrix.test/7f3a", "events": ["*"],
                                             "description": "Acme hook 7f3a"}, headers=a)
    assert hook.status_code == 201, hook.text
    call = client.post(f"/v1/webhooks/{hook.json()['id']}/test", headers=a)
    assert call.status_code == 202, call.text
    partner = client.post("/v1/admin/partners", json={"name": "SignIt", "ips": ["198.51.100.5"]}, headers=_bearer(admin))
    assert partner.status_code == 201, partner.text

    resources = {
        "message_id": sent.json()["id"], "domain": "acme-matrix.test", "workflow_id": workflow.json()["id"],
        "event_id": event.json()["id"], "digest_id": digest_id, "address": "lea.suppressed.7f3a@kunde.test",
        "prefix": spare, "explanation_id": sorted(explanation_ids())[0], "endpoint_id": hook.json()["id"],
        "call_id": call.json()["call_id"],
        "token": make_token(app.settings.SECRET_KEY, Unsubscribe(acme.id, "bulk.acme.7f3a@kunde.test",
                                                                  workflow.json()["id"])),
    }
    # What must never appear in another tenant's answer.
    markers = [resources["message_id"], "anna.acme.7f3a", "acme-matrix", WORKFLOW_NAME, "Acme digest 7f3a",
               "acme-event-7f3a", "acme-absence-7f3a", "lea.suppressed.7f3a", "chefin.acme.7f3a", "Acme secret subject",
               spare, keys["acme"][:10], "Acme Matrix GmbH", hook.json()["id"], "hooks.acme-matrix.test", "Acme hook 7f3a",
               call.json()["event_id"], hook.json()["secret"]]
    return {"app": app, "client": client, "resources": resources, "markers": markers, "keys": keys,
            "acme": a, "globex": _bearer(keys["globex"]), "admin": _bearer(admin),
            "unauthorised": {"no key": {}, "revoked tenant key": _bearer(revoked),
                             "revoked admin key": _bearer(revoked_admin),
                             "made-up tenant key": _bearer("pb_" + secrets.token_urlsafe(32)),
                             "made-up admin key": _bearer("pba_" + secrets.token_urlsafe(32)),
                             "not a bearer": {"Authorization": "Basic " + secrets.token_urlsafe(12)}}}


def _fill(path: str, resources: dict) -> str:
    """The path with each parameter filled from the first tenant's resources (admin paths: the
    tenant by its name, the partner by its name)."""
    if path.startswith("/v1/admin/partners/"):
        return path.replace("{name}", "SignIt")
    filled = path.replace("{name}", "acme")
    while "{" in filled:
        param = filled[filled.index("{") + 1:filled.index("}")].split(":")[0]
        assert param in resources, f"{path}: the matrix has no value for the path parameter {param!r}; add one"
        filled = filled.replace(filled[filled.index("{"):filled.index("}") + 1], str(resources[param]), 1)
    return filled


def _request(world, method: str, path: str, op: dict, headers: dict):
    resources = world["resources"]
    params = {}
    for parameter in op.get("parameters", []):
        if parameter["in"] == "query" and parameter.get("required"):
            assert parameter["name"] in QUERY, f"{method} {path}: no value for the query parameter {parameter['name']!r}"
            params[parameter["name"]] = QUERY[parameter["name"]]
    body = None
    if (method, path) in BODIES:
        body = BODIES[(method, path)](resources)
    else:
        assert not op.get("requestBody", {}).get("required"), f"{method} {path} needs a body: add one to BODIES"
    answer = world["client"].request(method, _fill(path, resources), params=params, json=body, headers=headers)
    assert_documented(method, path, op, answer)
    return answer


def assert_documented(method: str, path: str, op: dict, answer) -> None:
    """The answer's status is one the operation documents and, for an error, so is its code."""
    assert str(answer.status_code) in op["responses"], \
        f"{method} {path} answered {answer.status_code}, documented: {sorted(op['responses'])}"
    if answer.status_code >= 400:
        code = answer.json()["error"]["code"]
        listed = documented_codes(op, answer.status_code)
        assert code in listed, f"{method} {path}: {answer.status_code} {code} is not among the documented {listed}"


def _kind(path: str, method: str) -> str:
    if (method, path) in PUBLIC:
        return "public"
    return "admin" if path.startswith("/v1/admin/") else "tenant"


def test_every_operation_is_either_public_by_name_or_checked(world):
    found = {(method, path) for method, path, _ in operations(world["client"].app)}
    assert found, "the OpenAPI document lists no operation"
    assert PUBLIC <= found, f"named public but not in the API: {sorted(PUBLIC - found)}"
    outside = sorted(p for _, p in found if not p.startswith("/v1/"))
    assert not outside, f"operations outside /v1: {outside}"
    # a public operation is documented as needing no key; every other one as needing a bearer key
    for method, path, op in operations(world["client"].app):
        assert bool(op.get("security")) == (_kind(path, method) != "public"), f"{method} {path}: security {op.get('security')}"


def test_without_a_valid_key_every_protected_operation_is_401(world):
    for method, path, op in operations(world["client"].app):
        if _kind(path, method) == "public":
            continue
        for what, headers in world["unauthorised"].items():
            answer = _request(world, method, path, op, headers)
            assert answer.status_code == 401, f"{method} {path} with {what}: {answer.status_code} {answer.text[:200]}"
            assert answer.json()["error"]["code"] == "unauthorized", (method, path, what)
            assert answer.headers["www-authenticate"] == "Bearer", (method, path, what)


def test_the_scopes_never_mix(world):
    for method, path, op in operations(world["client"].app):
        kind = _kind(path, method)
        if kind == "admin":
            answer, code = _request(world, method, path, op, world["acme"]), "admin_key_required"
        elif kind == "tenant":
            answer, code = _request(world, method, path, op, world["admin"]), "tenant_key_required"
        else:
            continue
        assert answer.status_code == 403, f"{method} {path}: {answer.status_code} {answer.text[:200]}"
        assert answer.json()["error"]["code"] == code, (method, path)


def test_another_tenants_key_reaches_nothing_of_the_first_tenant(world):
    client, resources = world["client"], world["resources"]
    tenant_ops = [(m, p, op) for m, p, op in operations(client.app) if _kind(p, m) == "tenant"]
    # the first tenant itself reads each of its resources (so a 404 below is the scope, not a typo)
    for method, path, op in tenant_ops:
        if method == "GET" and "{" in path:
            own = _request(world, method, path, op, world["acme"])
            assert own.status_code == 200, f"the owner on {method} {path}: {own.status_code} {own.text[:200]}"
    for method, path, op in tenant_ops:
        answer = _request(world, method, path, op, world["globex"])
        names = {part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")}
        reaches = names & TENANT_RESOURCES or (method, path) == ("POST", "/v1/explanations/{explanation_id}/feedback")
        if reaches:
            assert answer.status_code == 404, f"{method} {path}: {answer.status_code} {answer.text[:300]}"
        else:
            assert answer.status_code < 400, f"{method} {path}: {answer.status_code} {answer.text[:300]}"
        # an answer may repeat what was asked (the id in "No message '…'"), nothing else of the first tenant's
        asked = str(answer.request.url) + answer.request.content.decode()
        leaked = [m for m in world["markers"] if str(m) in answer.text and str(m) not in asked]
        assert not leaked, f"{method} {path} shows the other tenant's {leaked}: {answer.text[:300]}"
    # and nothing of the first tenant's changed
    a = world["acme"]
    assert client.get(f"/v1/messages/{resources['message_id']}", headers=a).json()["recipients"][0]["state"] == "queued"
    assert client.get(f"/v1/domains/{resources['domain']}", headers=a).status_code == 200
    assert client.get(f"/v1/workflows/{resources['workflow_id']}", headers=a).json()["enabled"] is True
    assert resources["address"] in client.get("/v1/suppressions", headers=a).text
    hook = client.get(f"/v1/webhooks/{resources['endpoint_id']}", headers=a).json()
    assert hook["description"] == "Acme hook 7f3a" and hook["enabled"] is True
    assert any(k["prefix"] == resources["prefix"] and k["active"] for k in _items(client.get("/v1/keys", headers=a).json()))


def _items(body):
    """A list answer, bare or as a page object."""
    if isinstance(body, list):
        return body
    return next(v for k, v in body.items() if isinstance(v, list))


def test_the_right_key_passes_every_operation_and_public_ones_need_none(world):
    client = world["client"]
    ops = operations(client.app)
    for method, path, op in sorted(ops, key=lambda o: (_kind(o[1], o[0]) == "admin", o[0] == "DELETE")):
        kind = _kind(path, method)
        headers = {"tenant": world["acme"], "admin": world["admin"], "public": {}}[kind]
        answer = _request(world, method, path, op, headers)
        assert answer.status_code not in (401, 403) and answer.status_code < 500, \
            f"{kind} {method} {path}: {answer.status_code} {answer.text[:300]}"
    assert client.get("/v1/health").json()["status"] == "ok"
