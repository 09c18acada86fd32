"""The error side of the OpenAPI document: each operation lists every status it can answer
besides success — with the one error object (``ErrorResponse``) as the body and, in the
description, the error codes that status can carry for that operation. Built in one place from
what every operation shares (a key, the rate limit, the store, request validation, the body
limit) and a table of what single operations add, so no route has to repeat it."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI

from .idempotency import applies_to
from .schemas import ErrorResponse

# Public by design: no key, no tenant, no rate limit.
PUBLIC = {("GET", "/v1/health"), ("GET", "/v1/unsubscribe/{token}"), ("POST", "/v1/unsubscribe/{token}")}

_SEND = {404: ["message_not_found"], 413: ["message_too_large"],
         422: ["header_injection", "address_invalid", "message_invalid", "recipients_refused", "too_many_recipients"],
         429: ["hourly_limit_reached"]}
_WORKFLOW_BODY = {413: ["workflow_too_large"],
                  422: ["workflow_invalid", "condition_invalid", "template_invalid", "sender_domain_unknown",
                        "event_type_unknown", "language_invalid", "header_injection"]}
_EVENT_BODY = {413: ["event_too_large"], 422: ["event_invalid", "event_type_unknown", "idempotency_key_invalid",
                                               "language_invalid", "address_invalid"]}

# What single operations add to the shared statuses: status -> codes.
EXTRA: dict[tuple[str, str], dict[int, list[str]]] = {
    ("POST", "/v1/messages"): _SEND,
    ("POST", "/v1/messages/batch"): {422: ["batch_too_large"]},
    ("GET", "/v1/messages"): {422: ["state_invalid", "limit_invalid", "cursor_invalid", "search_invalid"]},
    ("GET", "/v1/messages/{message_id}"): {404: ["message_not_found"], 422: ["language_unknown"]},
    ("POST", "/v1/messages/{message_id}/release"): {404: ["message_not_found"], 409: ["message_not_held"]},
    ("POST", "/v1/messages/{message_id}/cancel"): {404: ["message_not_found"], 409: ["message_not_cancellable"]},
    ("POST", "/v1/explanations/{explanation_id}/feedback"): {404: ["explanation_not_found", "message_not_found"],
                                                             422: ["language_unknown", "language_invalid"]},
    ("GET", "/v1/report"): {422: ["duration_invalid"]},
    ("POST", "/v1/domains"): {409: ["domain_taken", "domain_limit"], 422: ["domain_reserved", "address_invalid"]},
    ("GET", "/v1/domains/{domain}"): {404: ["domain_not_found"]},
    ("DELETE", "/v1/domains/{domain}"): {404: ["domain_not_found"], 503: ["dns_update_failed"]},
    ("POST", "/v1/domains/{domain}/verify"): {404: ["domain_not_found"]},
    ("GET", "/v1/domains/{domain}/check"): {404: ["domain_not_found"]},
    ("POST", "/v1/addresses/check"): {422: ["too_many_recipients"]},
    ("GET", "/v1/suppressions"): {422: ["search_invalid"]},
    ("POST", "/v1/suppressions"): {422: ["address_invalid", "header_injection", "reason_invalid"]},
    ("DELETE", "/v1/suppressions/{address}"): {404: ["suppression_not_found"],
                                               422: ["address_invalid", "header_injection", "reason_missing"]},
    ("GET", "/v1/allowlist"): {422: ["format_unknown", "language_unknown"]},
    ("POST", "/v1/events"): {**_EVENT_BODY, 409: ["event_in_progress"]},
    ("GET", "/v1/events/{event_id}"): {404: ["event_not_found"]},
    ("POST", "/v1/workflows"): _WORKFLOW_BODY,
    ("GET", "/v1/workflows/{workflow_id}"): {404: ["workflow_not_found", "workflow_version_not_found"]},
    ("PUT", "/v1/workflows/{workflow_id}"): {404: ["workflow_not_found"], **_WORKFLOW_BODY},
    ("DELETE", "/v1/workflows/{workflow_id}"): {404: ["workflow_not_found"]},
    ("GET", "/v1/workflows/{workflow_id}/versions"): {404: ["workflow_not_found"]},
    ("POST", "/v1/workflows/{workflow_id}/enable"): {404: ["workflow_not_found"]},
    ("POST", "/v1/workflows/{workflow_id}/disable"): {404: ["workflow_not_found"]},
    ("POST", "/v1/workflows/{workflow_id}/preview"): {404: ["workflow_not_found", "workflow_version_not_found"],
                                                      **_EVENT_BODY},
    ("POST", "/v1/workflows/{workflow_id}/test"): {404: ["workflow_not_found"], **_EVENT_BODY,
                                                   422: _EVENT_BODY[422] + _SEND[422]},
    ("POST", "/v1/unsubscribe/{token}"): {404: ["unsubscribe_link_invalid"]},
    ("GET", "/v1/unsubscribe/{token}"): {404: ["unsubscribe_link_invalid"]},
    ("GET", "/v1/digests/{digest_id}"): {404: ["digest_not_found"]},
    ("PUT", "/v1/workflow-settings"): {422: ["language_invalid"]},
    ("DELETE", "/v1/keys/{prefix}"): {404: ["key_not_found"]},
    ("POST", "/v1/keys/{prefix}/rotate"): {404: ["key_not_found"]},
    ("POST", "/v1/admin/tenants"): {409: ["tenant_exists"],
                                    422: ["tenant_name_invalid", "display_name_invalid", "language_invalid",
                                          "time_zone_invalid", "policy_invalid", "hourly_limit_invalid"]},
    ("GET", "/v1/admin/tenants"): {422: ["limit_invalid", "cursor_invalid"]},
    ("GET", "/v1/admin/tenants/{name}"): {404: ["tenant_not_found"]},
    ("PATCH", "/v1/admin/tenants/{name}"): {404: ["tenant_not_found"],
                                            422: ["display_name_invalid", "language_invalid", "time_zone_invalid",
                                                  "policy_invalid", "hourly_limit_invalid", "setting_unknown"]},
    ("POST", "/v1/admin/tenants/{name}/suspend"): {404: ["tenant_not_found"], 422: ["reason_required"]},
    ("POST", "/v1/admin/tenants/{name}/resume"): {404: ["tenant_not_found"]},
    ("GET", "/v1/admin/tenants/{name}/keys"): {404: ["tenant_not_found"]},
    ("POST", "/v1/admin/tenants/{name}/keys"): {404: ["tenant_not_found"]},
    ("DELETE", "/v1/admin/tenants/{name}/keys/{prefix}"): {404: ["tenant_not_found", "key_not_found"]},
    ("POST", "/v1/admin/partners"): {409: ["partner_exists"], 422: ["partner_invalid"]},
    ("PUT", "/v1/admin/partners/{name}"): {404: ["partner_not_found"], 422: ["partner_invalid"]},
    ("DELETE", "/v1/admin/partners/{name}"): {404: ["partner_not_found"]},
    ("POST", "/v1/webhooks"): {409: ["webhook_limit"],
                               422: ["webhook_url_invalid", "webhook_url_refused", "webhook_events_invalid",
                                     "webhook_invalid"]},
    ("GET", "/v1/webhooks/{endpoint_id}"): {404: ["webhook_not_found"]},
    ("PATCH", "/v1/webhooks/{endpoint_id}"): {404: ["webhook_not_found"],
                                              422: ["webhook_url_invalid", "webhook_url_refused",
                                                    "webhook_events_invalid", "webhook_invalid"]},
    ("DELETE", "/v1/webhooks/{endpoint_id}"): {404: ["webhook_not_found"]},
    ("POST", "/v1/webhooks/{endpoint_id}/rotate-secret"): {404: ["webhook_not_found"], 422: ["overlap_invalid"]},
    ("POST", "/v1/webhooks/{endpoint_id}/test"): {404: ["webhook_not_found"], 409: ["webhook_disabled"]},
    ("GET", "/v1/webhooks/{endpoint_id}/calls"): {404: ["webhook_not_found"], 422: ["state_invalid"]},
    ("GET", "/v1/webhooks/{endpoint_id}/calls/{call_id}"): {404: ["webhook_call_not_found"]},
    ("POST", "/v1/webhooks/{endpoint_id}/calls/{call_id}/replay"): {404: ["webhook_not_found", "webhook_call_not_found"],
                                                                    409: ["webhook_disabled"]},
    ("POST", "/v1/webhooks/{endpoint_id}/replay"): {404: ["webhook_not_found"], 409: ["webhook_disabled"]},
}

_WHY = {
    400: "The body could not be read (not JSON, not UTF-8)",
    401: "No key, or a wrong or revoked one",
    403: "The key is of the wrong scope, or the tenant is suspended",
    404: "Not found — another tenant's resources answer the same as absent ones",
    409: "In conflict with the present state",
    413: "Too large",
    422: "The request is not valid",
    429: "Too many requests; Retry-After says when to try again",
    503: "The store cannot be reached; nothing was changed",
}


def statuses(method: str, path: str, op: dict[str, Any]) -> dict[int, list[str]]:
    """Each error status the operation can answer, with its codes."""
    public = (method, path) in PUBLIC
    admin = path.startswith("/v1/admin/")
    has_body = "requestBody" in op
    out: dict[int, list[str]] = {503: ["store_unavailable"]}
    if not public:
        out[401] = ["unauthorized"]
        out[403] = ["admin_key_required"] if admin else ["tenant_key_required", "tenant_suspended"]
        out[429] = ["rate_limited"]
    if has_body:
        out[400] = ["request_unreadable"]
        out[413] = ["request_too_large"]
    if has_body or op.get("parameters"):
        out[422] = ["request_invalid"]
    names = {p.get("name") for p in op.get("parameters", [])}
    if {"limit", "cursor"} <= names:  # a page of a list (api/paging.py)
        out[422] += ["limit_invalid", "cursor_invalid"]
    if applies_to(method, path):  # the Idempotency-Key header
        out[409] = ["idempotency_key_reused", "idempotency_in_progress", "idempotency_answer_too_large"]
        out.setdefault(422, []).append("idempotency_key_invalid")
    for status, codes in EXTRA.get((method, path), {}).items():
        out[status] = out.get(status, []) + [c for c in codes if c not in out.get(status, [])]
    return dict(sorted(out.items()))


def install(api: FastAPI) -> None:
    """Make ``api.openapi()`` document every operation's errors as described above."""
    plain = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema:
            return api.openapi_schema
        doc = plain()
        doc["info"]["description"] += (" Every error is the object ErrorResponse; each operation lists the statuses "
                                       "it can answer and, with each, the error codes.")
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                responses = {k: v for k, v in op["responses"].items() if not k.startswith(("4", "5"))}
                for status, codes in statuses(method.upper(), path, op).items():
                    responses[str(status)] = {
                        "description": f"{_WHY[status]}. Codes: " + ", ".join(f"`{c}`" for c in codes) + ".",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
                        **({"headers": {"Retry-After": {"schema": {"type": "string"},
                                                        "description": "Seconds to wait."}}} if status == 429 else {}),
                    }
                op["responses"] = responses
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}").pop("$defs", {}).items():
            schemas.setdefault(name, schema)
        schemas.setdefault("ErrorResponse", ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}"))
        for unused in ("HTTPValidationError", "ValidationError"):
            if f"#/components/schemas/{unused}" not in json.dumps({k: v for k, v in doc.items() if k != "components"}):
                schemas.pop(unused, None)
        return doc

    api.openapi = openapi  # type: ignore[method-assign]


def documented_codes(op: dict[str, Any], status: int) -> list[str] | None:
    """The codes an operation's document lists for a status (None: the status is not listed)."""
    response = op["responses"].get(str(status))
    if response is None:
        return None
    description = response.get("description", "")
    return [part.strip("` .") for part in description.split("Codes:", 1)[-1].split(",")] if "Codes:" in description else []
