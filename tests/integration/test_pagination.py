"""Every list of the API in one shape — ``{"<things>": [...], "next_cursor"}`` with ``limit`` and
``cursor`` — walked two at a time over five items, with an item added between pages: no item
repeats and none goes missing; forged cursors and limits out of 1–200 are refused. On SQLite and
PostgreSQL."""

from __future__ import annotations

import base64
import itertools

import pytest
from fastapi.testclient import TestClient

from postbote.admins import create_admin_key
from postbote.api import create_api
from postbote.tenants import add_tenant, create_key
from tests.conftest import MX1
from tests.integration.test_workflows import stage_workflow

_count = itertools.count()


@pytest.fixture
def api(make_app, zone):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app()
    client = TestClient(create_api(app))
    client.acme = {"Authorization": f"Bearer {create_key(app.engine, add_tenant(app.engine, 'acme'))}"}
    client.admin = {"Authorization": f"Bearer {create_admin_key(app.engine, 'ops')}"}
    client.workflow_id = None
    return client


def ok(response, status=201):
    assert response.status_code in (status, 200, 201, 202), response.text
    return response.json()


def add_message(c):
    n = next(_count)
    ok(c.post("/v1/messages", json={"from": "HR <hr@acme.test>", "to": [f"m{n}@beispiel.test"], "subject": f"s{n}",
                                    "text": "t"}, headers=c.acme), 202)


def add_domain(c):
    ok(c.post("/v1/domains", json={"domain": f"d{next(_count)}.acme.test"}, headers=c.acme))


def add_suppression(c):
    ok(c.post("/v1/suppressions", json={"address": f"s{next(_count)}@beispiel.test"}, headers=c.acme))


def add_key(c):
    ok(c.post("/v1/keys", headers=c.acme))


def add_workflow(c):
    ok(c.post("/v1/workflows", json=stage_workflow(domain=None), headers=c.acme))


def add_version(c):
    if c.workflow_id is None:
        c.workflow_id = ok(c.post("/v1/workflows", json=stage_workflow(domain=None), headers=c.acme))["id"]
        return
    ok(c.put(f"/v1/workflows/{c.workflow_id}", json=stage_workflow(domain=None), headers=c.acme), 200)


def add_partner(c):
    ok(c.post("/v1/admin/partners", json={"name": f"P{next(_count):03d}", "ips": ["198.51.100.5"]}, headers=c.admin))


def add_tenant_over_api(c):
    ok(c.post("/v1/admin/tenants", json={"name": f"t{next(_count):03d}"}, headers=c.admin))


def add_tenant_key(c):
    ok(c.post("/v1/admin/tenants/acme/keys", headers=c.admin))


def versions_path(c):
    return f"/v1/workflows/{c.workflow_id}/versions"


# name in the answer, path, who asks, how to add one item, what tells items apart, items there already
LISTS = {
    "messages": ("messages", "/v1/messages", "acme", add_message, "id", 0),
    "domains": ("domains", "/v1/domains", "acme", add_domain, "domain", 0),
    "suppressions": ("suppressions", "/v1/suppressions", "acme", add_suppression, "address", 0),
    "keys": ("keys", "/v1/keys", "acme", add_key, "prefix", 1),
    "workflows": ("workflows", "/v1/workflows", "acme", add_workflow, "id", 0),
    "versions": ("versions", versions_path, "acme", add_version, "version", 0),
    "partners": ("partners", "/v1/partners", "acme", add_partner, "name", 0),
    "admin_partners": ("partners", "/v1/admin/partners", "admin", add_partner, "name", 0),
    "admin_tenants": ("tenants", "/v1/admin/tenants", "admin", add_tenant_over_api, "name", 1),
    "admin_tenant_keys": ("keys", "/v1/admin/tenants/acme/keys", "admin", add_tenant_key, "prefix", 1),
}


def setup_list(api, which):
    name, path, who, add, field, there = LISTS[which]
    for _ in range(5 - there):
        add(api)
    path = path(api) if callable(path) else path
    return name, path, getattr(api, who), add, field


@pytest.mark.parametrize("which", list(LISTS))
def test_pages_of_two_over_five_items_have_no_repeat_and_no_gap(api, which):
    name, path, headers, add, field = setup_list(api, which)
    everything = [item[field] for item in ok(api.get(path, headers=headers), 200)[name]]
    assert len(everything) == 5 and len(set(everything)) == 5
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = ok(api.get(path, params=params, headers=headers), 200)
        assert set(page) == {name, "next_cursor"} and len(page[name]) <= 2
        seen += [item[field] for item in page[name]]
        cursor, pages = page["next_cursor"], pages + 1
        if pages == 1:
            add(api)  # an item arrives between pages
        if cursor is None:
            break
        assert pages < 10
    assert len(seen) == len(set(seen))  # no repeat
    assert set(everything) <= set(seen)  # no gap
    assert pages >= 3


@pytest.mark.parametrize("which", list(LISTS))
def test_forged_cursors_and_limits_out_of_range_are_refused(api, which):
    name, path, headers, add, field = setup_list(api, which)
    forged = ["not a cursor!", base64.urlsafe_b64encode(b"keys:../../etc").decode().rstrip("="), "%%%"]
    for cursor in forged:
        answer = api.get(path, params={"cursor": cursor}, headers=headers)
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "cursor_invalid", (cursor, answer.text)
    for limit in (0, 201, -1):
        answer = api.get(path, params={"limit": limit}, headers=headers)
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "limit_invalid", (limit, answer.text)
    assert ok(api.get(path, params={"limit": 200}, headers=headers), 200)["next_cursor"] is None


def test_a_cursor_of_one_list_is_refused_by_another(api):
    for _ in range(3):
        add_key(api)
        add_suppression(api)
    keys_cursor = ok(api.get("/v1/keys", params={"limit": 1}, headers=api.acme), 200)["next_cursor"]
    answer = api.get("/v1/suppressions", params={"cursor": keys_cursor}, headers=api.acme)
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "cursor_invalid"
