"""The OpenAPI document as a contract: it names its version, every path is under /v1, and each
operation lists the error statuses it can answer — each with the one error object and its codes.
That every status and code the authorisation matrix and the property tests meet is among those
documented for its operation is checked where they meet it (test_api_matrix.py,
test_api_fuzz.py)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from postbote import __version__
from postbote.api import create_api
from postbote.api.contract import PUBLIC, documented_codes

ERROR = {"$ref": "#/components/schemas/ErrorResponse"}


@pytest.fixture
def doc(make_app):
    client = TestClient(create_api(make_app()))
    served = client.get("/openapi.json")
    assert served.status_code == 200
    assert client.get("/docs").status_code == 200
    return served.json()


def _operations(doc):
    return [(m.upper(), p, op) for p, ops in doc["paths"].items() for m, op in ops.items()]


def test_the_document_names_its_version_and_every_path_is_under_v1(doc):
    assert doc["info"]["version"] == __version__
    assert doc["paths"] and all(path.startswith("/v1/") for path in doc["paths"]), sorted(doc["paths"])
    assert "ErrorResponse" in doc["components"]["schemas"]


def test_every_operation_documents_its_errors_with_the_error_object_and_codes(doc):
    for method, path, op in _operations(doc):
        where = f"{method} {path}"
        statuses = {int(s) for s in op["responses"] if s[0] in "45"}
        assert 503 in statuses, where  # the store may be away for anyone
        if (method, path) in PUBLIC:
            assert not statuses & {401, 403}, f"{where} needs no key but documents {sorted(statuses)}"
        else:
            assert {401, 403, 429} <= statuses, f"{where}: {sorted(statuses)}"
            assert documented_codes(op, 401) == ["unauthorized"], where
            scope = "admin_key_required" if path.startswith("/v1/admin/") else "tenant_key_required"
            assert scope in documented_codes(op, 403), where
        if "requestBody" in op:
            assert {400, 413, 422} <= statuses, f"{where} takes a body: {sorted(statuses)}"
        if "{" in path and (method, path) not in {("POST", "/v1/explanations/{explanation_id}/feedback")}:
            assert 404 in statuses, f"{where} names a resource: {sorted(statuses)}"
        for status in statuses:
            response = op["responses"][str(status)]
            assert response["content"] == {"application/json": {"schema": ERROR}}, f"{where} {status}"
            codes = documented_codes(op, status)
            assert codes and all(c and c.replace("_", "").isalpha() and c.islower() for c in codes), f"{where} {status}: {codes}"
        if 429 in statuses:
            assert "Retry-After" in op["responses"]["429"]["headers"], where


def test_an_error_status_outside_the_table_is_not_documented(doc):
    """Statuses come from what the operation does, not from one list for all: nothing without a
    body documents 413, nothing without a parameter 422, health no 401."""
    health = doc["paths"]["/v1/health"]["get"]["responses"]
    assert sorted(health) == ["200", "503"]
    settings = doc["paths"]["/v1/workflow-settings"]["get"]["responses"]
    assert "413" not in settings and "422" not in settings and "409" not in settings
    release = doc["paths"]["/v1/messages/{message_id}/release"]["post"]["responses"]
    assert "message_not_held" in documented_codes({"responses": release}, 409)
