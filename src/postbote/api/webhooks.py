"""``/v1/webhooks``: the calling tenant's endpoints (register, list, change, remove, rotate the
secret), their calls with every attempt, the dead-letter list and replay, and a test call.
Another tenant's endpoint or call answers 404, as if absent."""

from __future__ import annotations

from typing import Annotated, Any, Callable

from fastapi import Depends, FastAPI, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from ..app import App
from ..durations import parse_duration
from ..errors import InputError
from ..tenants import Tenant
from ..webhooks import endpoints, history
from ..webhooks.test_call import send_test
from .paging import DEFAULT_PAGE, check_limit, decode_cursor, decode_int_cursor, page_json

EndpointId = Annotated[str, Path(min_length=1, max_length=32)]
CallId = Annotated[int, Path(ge=1, le=2**63 - 1)]
_EXAMPLE = {"url": "https://hooks.example.com/postbote", "events": ["message.delivered", "message.bounced", "domain.*"],
            "description": "HR backend"}


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})
    url: str = Field(..., max_length=endpoints.MAX_URL, description="https:// URL of your receiver")
    events: list[str] = Field(..., max_length=32, description="Event types, groups ('message.*') or '*'")
    description: str | None = Field(None, max_length=endpoints.MAX_DESCRIPTION)
    enabled: bool = True


class WebhookChange(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"enabled": False}]})
    url: str | None = Field(None, max_length=endpoints.MAX_URL)
    events: list[str] | None = Field(None, max_length=32)
    description: str | None = Field(None, max_length=endpoints.MAX_DESCRIPTION)
    enabled: bool | None = None


class RotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"overlap": "24h"}]})
    overlap: str = Field("24h", max_length=16, description="How long the old secret keeps signing beside the new "
                                                           "one: 0s to 7d")


class WebhookOut(BaseModel):
    id: str
    url: str
    description: str | None
    events: list[str]
    enabled: bool
    created_at: str
    updated_at: str
    previous_secret_valid_until: str | None = Field(description="While a rotation's overlap lasts: when the old "
                                                                "secret stops signing")


class WebhookWithSecret(WebhookOut):
    secret: str = Field(description="whsec_…: the signing secret, shown in this answer only")


class WebhookPage(BaseModel):
    webhooks: list[WebhookOut]
    next_cursor: str | None


class Removed(BaseModel):
    id: str
    removed: bool


class CallOut(BaseModel):
    id: int
    event_id: str = Field(description="The webhook-id header: the same on every attempt")
    type: str
    state: str = Field(description="pending, delivered or dead")
    attempts: int
    next_attempt_at: str | None
    expires_at: str
    last_status: int | None
    last_error: str | None
    created_at: str
    finished_at: str | None


class AttemptOut(BaseModel):
    at: str
    duration_ms: int
    status: int | None = Field(description="The HTTP status; null when there was no answer")
    error: str | None
    response_excerpt: str | None = Field(description="The first 1,000 characters of the answer")


class CallDetail(CallOut):
    payload: dict[str, Any]
    attempt_log: list[AttemptOut]


class CallPage(BaseModel):
    calls: list[CallOut]
    next_cursor: str | None


class Replayed(BaseModel):
    replayed: int = Field(description="Calls sent again (0: the call was on its way already)")


class TestCall(BaseModel):
    call_id: int
    event_id: str


def add_webhook_routes(api: FastAPI, app: App, tenant: Callable[..., Tenant], errors: dict) -> None:
    @api.post("/v1/webhooks", status_code=201, response_model=WebhookWithSecret, responses=errors)
    def post_webhook(body: WebhookRequest, who: Tenant = Depends(tenant)) -> dict:
        """Register an endpoint. The answer holds its signing ``secret`` (``whsec_…``), shown this once."""
        made, secret = endpoints.create(app.engine, app.settings, who.id, url=body.url, events=body.events,
                                        description=body.description, enabled=body.enabled)
        return {**made.to_dict(), "secret": secret}

    @api.get("/v1/webhooks", response_model=WebhookPage, responses=errors)
    def get_webhooks(limit: int = DEFAULT_PAGE, cursor: str | None = None, who: Tenant = Depends(tenant)) -> dict:
        """Your endpoints by id: ``webhooks``, ``next_cursor`` (``limit`` 1–200, ``cursor`` as given)."""
        found = endpoints.list_page(app.engine, who.id, after=decode_cursor(cursor, "webhooks"),
                                    limit=check_limit(limit) + 1)
        return page_json("webhooks", "webhooks", found, limit, lambda e: e.id, lambda e: e.to_dict())

    @api.get("/v1/webhooks/{endpoint_id}", response_model=WebhookOut, responses=errors)
    def get_webhook(endpoint_id: EndpointId, who: Tenant = Depends(tenant)) -> dict:
        """One endpoint (never its secret)."""
        return endpoints.get(app.engine, who.id, endpoint_id).to_dict()

    @api.patch("/v1/webhooks/{endpoint_id}", response_model=WebhookOut, responses=errors)
    def patch_webhook(endpoint_id: EndpointId, body: WebhookChange, who: Tenant = Depends(tenant)) -> dict:
        """Change ``url``, ``events``, ``description`` or ``enabled``; what is left out stays."""
        changes = {name: getattr(body, name) for name in body.model_fields_set}
        for name in ("url", "events", "enabled"):
            if name in changes and changes[name] is None:
                raise InputError(f"{name} cannot be null.", code="webhook_invalid", hint=f"Leave {name} out to keep it.")
        return endpoints.change(app.engine, app.settings, who.id, endpoint_id, changes).to_dict()

    @api.delete("/v1/webhooks/{endpoint_id}", response_model=Removed, responses=errors)
    def delete_webhook(endpoint_id: EndpointId, who: Tenant = Depends(tenant)) -> dict:
        """Remove an endpoint with its calls; nothing more is sent to it."""
        endpoints.remove(app.engine, who.id, endpoint_id)
        return {"id": endpoint_id, "removed": True}

    @api.post("/v1/webhooks/{endpoint_id}/rotate-secret", status_code=201, response_model=WebhookWithSecret,
              responses=errors)
    def rotate_secret(endpoint_id: EndpointId, body: RotateRequest | None = None, who: Tenant = Depends(tenant)) -> dict:
        """A new signing secret, shown this once. Until ``previous_secret_valid_until`` every call
        carries two signatures, one by each secret."""
        text = (body or RotateRequest()).overlap
        try:
            overlap = parse_duration(text)
        except ValueError as exc:
            raise InputError(str(exc), code="overlap_invalid", hint="Write e.g. 0s, 1h, 24h or 7d.") from None
        secret, until = endpoints.rotate(app.engine, app.settings, who.id, endpoint_id, overlap_seconds=overlap)
        return {**endpoints.get(app.engine, who.id, endpoint_id).to_dict(), "secret": secret}

    @api.post("/v1/webhooks/{endpoint_id}/test", status_code=202, response_model=TestCall, responses=errors)
    def test_webhook(endpoint_id: EndpointId, who: Tenant = Depends(tenant)) -> dict:
        """Queue a ``webhook.test`` call to the endpoint, signed like every other; follow it under
        calls."""
        return send_test(app.engine, app.settings, who.id, endpoint_id)

    @api.get("/v1/webhooks/{endpoint_id}/calls", response_model=CallPage, responses=errors)
    def get_calls(endpoint_id: EndpointId, state: str | None = Query(None, max_length=16), limit: int = DEFAULT_PAGE,
                  cursor: str | None = None, who: Tenant = Depends(tenant)) -> dict:
        """Calls to the endpoint, newest first: ``calls``, ``next_cursor``. ``state``: pending,
        delivered or dead (the dead-letter list)."""
        found = history.list_calls(app.engine, who.id, endpoint_id, state=history.check_state(state),
                                   before=decode_int_cursor(cursor, "calls"), limit=check_limit(limit) + 1)
        return page_json("calls", "calls", found, limit, lambda r: r[0], lambda r: r[1])

    @api.get("/v1/webhooks/{endpoint_id}/calls/{call_id}", response_model=CallDetail, responses=errors)
    def get_call(endpoint_id: EndpointId, call_id: CallId, who: Tenant = Depends(tenant)) -> dict:
        """One call: its payload and every attempt (status, latency, the start of the answer)."""
        return history.get_call(app.engine, who.id, endpoint_id, call_id)

    @api.post("/v1/webhooks/{endpoint_id}/calls/{call_id}/replay", status_code=202, response_model=Replayed,
              responses=errors)
    def replay_call(endpoint_id: EndpointId, call_id: CallId, who: Tenant = Depends(tenant)) -> dict:
        """Send a delivered or dead call again, under its event id."""
        return {"replayed": history.replay(app.engine, app.settings, who.id, endpoint_id, call_id)}

    @api.post("/v1/webhooks/{endpoint_id}/replay", status_code=202, response_model=Replayed, responses=errors)
    def replay_dead(endpoint_id: EndpointId, who: Tenant = Depends(tenant)) -> dict:
        """Send every dead call of the endpoint again (the dead-letter list emptied)."""
        return {"replayed": history.replay(app.engine, app.settings, who.id, endpoint_id)}
