"""Property-based tests of the whole API: schemathesis draws requests for every operation from
the OpenAPI document and sends them to the ASGI app in this process — once with a tenant's key
(every operation outside /v1/admin), once with an admin key (those under /v1/admin) — on SQLite
and PostgreSQL. No answer may be a server error, each status must be one the operation documents,
and each body must match its documented schema."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from postbote.admins import create_admin_key
from postbote.api import create_api
from postbote.api.contract import documented_codes
from postbote.tenants import add_tenant, create_key
from tests.conftest import MX1

# Examples per operation and key: about 55 operations, two stores — this keeps the file near
# two minutes on two cores.
EXAMPLES = 40
_settings = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
                     phases=[Phase.explicit, Phase.generate])  # no shrinking: the time stays bounded
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def fuzzed(make_app, zone):
    zone.mail_domain("kunde.test", (10, "mx.kunde.test", MX1))
    zone.mail_domain("beispiel.test", (10, "mx.beispiel.test", MX1))  # the document's examples
    app = make_app()
    api = create_api(app)
    client = TestClient(api)
    admin = {"Authorization": f"Bearer {create_admin_key(app.engine, 'fuzz')}"}
    tenant = {"Authorization": f"Bearer {create_key(app.engine, add_tenant(app.engine, 'acme', 'ACME GmbH'))}"}
    # something for the drawn requests to find
    client.post("/v1/messages", json={"from": "HR <hr@platform.test>", "to": ["anna@kunde.test"], "subject": "Hallo",
                                      "text": "Willkommen"}, headers=tenant)
    client.post("/v1/domains", json={"domain": "acme.test"}, headers=tenant)
    return {"api": api, "tenant": tenant, "admin": admin}


def _fuzz(fuzzed, key: str, admin_paths: bool) -> None:
    """Every operation (of the admin scope or of the other), EXAMPLES requests each, valid and
    invalid ones drawn alike; all failures are gathered and reported together."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed["api"])
    failures, seen, observed, timings = [], 0, Counter(), {}
    doc = fuzzed["api"].openapi()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith("/v1/admin/") != admin_paths:
            continue
        seen += 1
        strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE),
                             *schema.get_strategies_from_examples(operation))  # the document's examples too

        @_settings
        @given(case=strategy)
        def run(case):
            answer = case.call_and_validate(headers=fuzzed[key], checks=CHECKS)
            observed[(operation.method.upper(), operation.path, answer.status_code)] += 1
            if answer.status_code >= 400:  # the error code is one the document lists for this status
                code = answer.json()["error"]["code"]
                listed = documented_codes(doc["paths"][operation.path][operation.method.lower()], answer.status_code)
                assert code in listed, f"{answer.status_code} {code} is not among the documented {listed}"

        started = time.monotonic()
        try:
            run()
        except (Exception, BaseExceptionGroup) as failure:  # noqa: BLE001 — each operation's failure is reported, the rest still run
            failures.append(f"{operation.method.upper()} {operation.path}: {failure}")
        timings[f"{operation.method.upper()} {operation.path}"] = round(time.monotonic() - started, 1)
    print(sorted(observed.items()))
    print(sorted(timings.items(), key=lambda t: -t[1])[:10])
    assert seen > 5, "no operations were drawn"
    assert not failures, "\n\n".join(failures)


def test_no_tenant_request_is_a_server_error_or_off_the_document(fuzzed):
    _fuzz(fuzzed, "tenant", admin_paths=False)


def test_no_admin_request_is_a_server_error_or_off_the_document(fuzzed):
    _fuzz(fuzzed, "admin", admin_paths=True)


# Found by the tests above: ids beyond what the store's columns hold reached the driver, which
# raised (SQLite: OverflowError; PostgreSQL: out of range) and the answer was 500.
@pytest.mark.parametrize("method, path, body", [
    ("GET", f"/v1/workflows/{2**31}", None),
    ("GET", f"/v1/workflows/{2**70}", None),
    ("GET", "/v1/workflows/1?version=" + str(2**40), None),
    ("POST", f"/v1/workflows/{2**63}/enable", None),
    ("POST", "/v1/workflows/1/preview", {"version": 2**40}),
    ("GET", f"/v1/events/{2**64}", None),
    ("GET", f"/v1/digests/{2**64}", None),
    ("GET", "/v1/events/-9223372036854775809", None),
])
def test_an_id_too_large_for_the_store_is_invalid_not_a_server_error(fuzzed, method, path, body):
    answer = TestClient(fuzzed["api"], raise_server_exceptions=False).request(method, path, json=body,
                                                                            headers=fuzzed["tenant"])
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "request_invalid", answer.text


# Found beside them, by requests written to probe what the drawn ones missed: a NUL character
# was taken on SQLite and failed with 500 on PostgreSQL, which cannot store one. It is refused at
# the door now, on both stores alike.
@pytest.mark.parametrize("method, path, body, key", [
    ("POST", "/v1/admin/tenants", {"name": "nul", "display_name": "a\x00b"}, "admin"),
    ("POST", "/v1/admin/tenants/acme/suspend", {"reason": "a\x00b"}, "admin"),
    ("POST", "/v1/suppressions", {"address": "x@kunde.test", "detail": "a\x00b"}, "tenant"),
    ("POST", "/v1/events", {"type": "candidate.applied", "idempotency_key": "a\x00b"}, "tenant"),
    ("POST", "/v1/events", {"type": "candidate.applied", "idempotency_key": "k", "fields": {"a\x00": 1}}, "tenant"),
    ("GET", "/v1/messages?recipient=%00", None, "tenant"),
    ("GET", "/v1/suppressions?search=a%00", None, "tenant"),
    ("GET", "/v1/messages/a%00b", None, "tenant"),
])
def test_a_nul_character_is_invalid_not_a_server_error(fuzzed, method, path, body, key):
    answer = TestClient(fuzzed["api"], raise_server_exceptions=False).request(method, path, json=body,
                                                                            headers=fuzzed[key])
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "request_invalid", answer.text
    assert answer.headers["x-request-id"] == answer.json()["error"]["request_id"]


def test_text_that_only_spells_a_nul_escape_is_taken(fuzzed):
    client = TestClient(fuzzed["api"])
    taken = client.post("/v1/suppressions", json={"address": "x@kunde.test", "detail": "\\u0000 as text"},
                        headers=fuzzed["tenant"])
    assert taken.status_code == 201, taken.text
