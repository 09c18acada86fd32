"""Events and workflows over HTTP: ``POST /v1/events``, workflow CRUD with versions, enable and
disable, dry run, preview and test send. Every route is scoped to the calling tenant: another
tenant's workflow or event answers 404, as if absent."""

from __future__ import annotations

import asyncio
import html
from typing import Annotated, Any, Callable

from fastapi import Depends, FastAPI, Path, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from ..app import App
from .paging import DEFAULT_PAGE, check_limit, decode_cursor, decode_int_cursor, page_json
from ..domains import list_partners
from ..tenants import Tenant
from ..workflows import (
    Deps,
    digest_of,
    handle_event,
    list_versions,
    list_workflows,
    load_event,
    preview,
    save_workflow,
    set_enabled,
    set_fallback_language,
    test_send,
    verdicts,
)
from ..workflows import fallback_language as get_fallback
from ..workflows import get_workflow, read_token, unsubscribe


# Ids as the store keeps them: workflows and their versions in 32-bit columns, events and digests
# in 64-bit ones. A number beyond them is refused as invalid (422) before it reaches the store,
# where it would overflow the driver.
MAX_INT32, MAX_INT64 = 2**31 - 1, 2**63 - 1
WorkflowId = Annotated[int, Path(ge=1, le=MAX_INT32)]
RowId = Annotated[int, Path(ge=1, le=MAX_INT64)]
Version = Annotated[int | None, Query(ge=1, le=MAX_INT32)]


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(None, max_length=320)
    name: str | None = Field(None, max_length=200)
    lang: str | None = Field(None, max_length=8, description="de, en, es …: picks the template")
    timezone: str | None = Field(None, max_length=64, description="IANA name, for delays 'at 09:00'")


class EventRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(..., max_length=64, examples=["candidate.stage_changed"])
    idempotency_key: str = Field(..., max_length=200, description="The same key twice fires once.")
    occurred_at: str | None = Field(None, max_length=40, description="ISO 8601; default now")
    people: dict[str, Person] = Field(default_factory=dict, description="By role: employee, manager, candidate, "
                                      "hr_contact, signer")
    fields: dict[str, Any] = Field(default_factory=dict)
    dry_run: bool = Field(False, description="Show what would happen; send and record nothing.")


class WorkflowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., max_length=200)
    trigger: str = Field(..., max_length=64)
    conditions: Any = None
    delay: dict[str, Any] | None = None
    actions: list[dict[str, Any]] = Field(..., max_length=5, description="E-mail actions: class, recipients "
                                          "(step 1), sender (step 2), templates by language (step 3)")
    enabled: bool = True

    def definition(self) -> dict[str, Any]:
        out = self.model_dump(exclude={"enabled"})
        return {k: v for k, v in out.items() if v is not None}


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event: EventRequest | None = None
    lang: str | None = Field(None, max_length=8)
    version: int | None = Field(None, ge=1, le=MAX_INT32)


class TestSendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(..., max_length=320)
    event: EventRequest | None = None
    lang: str | None = Field(None, max_length=8)


class FallbackLanguageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fallback_language: str = Field(..., max_length=8)


def _event(body: EventRequest | None) -> dict[str, Any] | None:
    if body is None:
        return None
    data = body.model_dump(exclude={"dry_run"})
    data["people"] = {role: {k: v for k, v in p.items() if v is not None} for role, p in data["people"].items()}
    return {k: v for k, v in data.items() if v is not None}


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Unsubscribe</title></head><body>
<form method="post" action="/v1/unsubscribe/{token}"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<p>Stop mailings to {address}? / Keine Rundschreiben mehr an {address}? / ¿No más envíos a {address}?</p>
<button type="submit">Unsubscribe · Abmelden · Darse de baja</button></form></body></html>"""


def add_workflow_routes(api: FastAPI, app: App, tenant: Callable[..., Tenant], errors: dict) -> None:
    def deps() -> Deps:
        return Deps(app.engine, app.settings, app.resolver, app.acceptor)

    @api.post("/v1/events", responses=errors)
    def post_event(body: EventRequest, who: Tenant = Depends(tenant)) -> dict:
        """An event from the HR platform. The answer lists, per matching workflow and recipient,
        the message made (`outcome: sent`, its id, workflow id and version) or why none was
        (`no_workflow`, `condition_false`, `delayed` with `due_at`, `recipient_suppressed`,
        `recipient_without_address`, …). A repeated `idempotency_key` fires nothing and gets the
        first answer again, with `duplicate: true`."""
        # In the server's thread pool, one loop per request: events are handled side by side while
        # one waits for the store or signs (RSA releases the GIL).
        return asyncio.run(handle_event(deps(), who, _event(body), dry_run=body.dry_run))

    @api.get("/v1/events/{event_id}", responses=errors)
    def get_event(event_id: RowId, who: Tenant = Depends(tenant)) -> dict:
        """An event as recorded, with the answer it was given."""
        event, answer = load_event(app.engine, who.id, event_id)
        return {"id": event.id, "event": event.payload(), "answer": answer}

    @api.post("/v1/workflows", status_code=201, responses=errors)
    async def post_workflow(body: WorkflowRequest, who: Tenant = Depends(tenant)) -> dict:
        """Create a workflow (version 1). `senders` gives each action's step-2 verdict now;
        a template that does not compile is refused with `template_invalid` and its line."""
        return await save_workflow(deps(), who, body.definition(), enabled=body.enabled)

    @api.get("/v1/workflows", responses=errors)
    def get_workflows(limit: int = DEFAULT_PAGE, cursor: str | None = None, who: Tenant = Depends(tenant)) -> dict:
        """Your workflows by id, each at its current version: ``workflows``, ``next_cursor``."""
        found = list_workflows(app.engine, who.id, after=decode_int_cursor(cursor, "workflows"), limit=check_limit(limit) + 1)
        return page_json("workflows", "workflows", found, limit, lambda w: w.id, lambda w: w.to_dict())

    @api.get("/v1/workflows/{workflow_id}", responses=errors)
    async def get_one(workflow_id: WorkflowId, version: Version = None, who: Tenant = Depends(tenant)) -> dict:
        """One workflow (at `version`, default the current one) with its senders' verdicts now."""
        workflow = get_workflow(app.engine, who.id, workflow_id, version)
        return {**workflow.to_dict(), "senders": await verdicts(deps(), who, workflow)}

    @api.put("/v1/workflows/{workflow_id}", responses=errors)
    async def put_workflow(workflow_id: WorkflowId, body: WorkflowRequest, who: Tenant = Depends(tenant)) -> dict:
        """Edit: makes a new version; messages already made keep naming theirs."""
        saved = await save_workflow(deps(), who, body.definition(), workflow_id=workflow_id)
        if body.enabled != saved["enabled"]:
            saved["enabled"] = set_enabled(app.engine, who.id, workflow_id, body.enabled).enabled
        return saved

    @api.delete("/v1/workflows/{workflow_id}", responses=errors)
    def delete_workflow(workflow_id: WorkflowId, who: Tenant = Depends(tenant)) -> dict:
        """Disable for good; the versions stay, because messages name them."""
        return set_enabled(app.engine, who.id, workflow_id, False).to_dict()

    @api.get("/v1/workflows/{workflow_id}/versions", responses=errors)
    def get_versions(workflow_id: WorkflowId, limit: int = DEFAULT_PAGE, cursor: str | None = None,
                     who: Tenant = Depends(tenant)) -> dict:
        """Every version, oldest first, with its definition and how many messages it made:
        ``versions``, ``next_cursor``."""
        found = list_versions(app.engine, who.id, workflow_id, after=decode_int_cursor(cursor, "versions"),
                              limit=check_limit(limit) + 1)
        return page_json("versions", "versions", found, limit, lambda v: v["version"], lambda v: v)

    for state in ("enable", "disable"):
        def toggle(workflow_id: WorkflowId, who: Tenant = Depends(tenant), _on: bool = state == "enable") -> dict:
            return set_enabled(app.engine, who.id, workflow_id, _on).to_dict()

        toggle.__doc__ = f"{state.capitalize()} the workflow."
        api.post(f"/v1/workflows/{{workflow_id}}/{state}", responses=errors, name=f"{state}_workflow")(toggle)

    @api.post("/v1/workflows/{workflow_id}/preview", responses=errors)
    def post_preview(workflow_id: WorkflowId, body: PreviewRequest | None = None, who: Tenant = Depends(tenant)) -> dict:
        """Render each action with sample data (or the `event` given), in `lang` or every language."""
        body = body or PreviewRequest()
        return preview(deps(), who, workflow_id, event_data=_event(body.event), lang=body.lang, version=body.version)

    @api.post("/v1/workflows/{workflow_id}/test", responses=errors)
    async def post_test(workflow_id: WorkflowId, body: TestSendRequest, who: Tenant = Depends(tenant)) -> dict:
        """Send each action once to `to` only, the subject marked `[TEST]`, recorded as a test."""
        return await test_send(deps(), who, workflow_id, body.to, event_data=_event(body.event), lang=body.lang)

    @api.post("/v1/unsubscribe/{token}", responses=errors, tags=["unsubscribe"])
    def post_unsubscribe(token: str) -> dict:
        """RFC 8058 one-click unsubscribe: the link from a bulk message's `List-Unsubscribe`
        header. No API key: the link's signature is the authority. Suppresses the address for the
        sending tenant with reason `unsubscribed` (bulk mail only). A forged or altered link
        answers 404 `unsubscribe_link_invalid` and changes nothing."""
        item = unsubscribe(app.engine, app.settings.SECRET_KEY, token)
        return {"address": item.address, "unsubscribed": True}

    @api.get("/v1/unsubscribe/{token}", response_class=HTMLResponse, responses=errors, tags=["unsubscribe"])
    def get_unsubscribe(token: str) -> HTMLResponse:
        """A page with the unsubscribe button; a GET changes nothing (mail scanners follow links)."""
        item = read_token(app.settings.SECRET_KEY, token)
        return HTMLResponse(_PAGE.format(address=html.escape(item.address), token=html.escape(token, quote=True)))

    @api.get("/v1/digests/{digest_id}", responses=errors)
    def get_digest(digest_id: RowId, who: Tenant = Depends(tenant)) -> dict:
        """A digest: the events it collected, when it is due, and the message it became."""
        return digest_of(app.engine, who.id, digest_id)

    @api.get("/v1/partners", responses=errors, tags=["partners"])
    def get_partners(limit: int = DEFAULT_PAGE, cursor: str | None = None, who: Tenant = Depends(tenant)) -> dict:
        """The partners that send in tenants' names (the e-signature provider): name, ips, hosts,
        spf_include, dkim_domain, dkim_selector. Their verdict per domain is in
        `GET /v1/domains/{domain}/check` under `partners`. By name: ``partners``, ``next_cursor``."""
        found = list_partners(app.engine, app.settings, after=decode_cursor(cursor, "partners"), limit=check_limit(limit) + 1)
        return page_json("partners", "partners", found, limit, lambda p: p.name, lambda p: p.to_dict())

    @api.get("/v1/workflow-settings", responses=errors)
    def get_settings(who: Tenant = Depends(tenant)) -> dict:
        """Your workflow settings: the fallback language of templates."""
        return {"fallback_language": get_fallback(app.engine, who.id)}

    @api.put("/v1/workflow-settings", responses=errors)
    def put_settings(body: FallbackLanguageRequest, who: Tenant = Depends(tenant)) -> dict:
        """Set the language used when a recipient's language has no template."""
        return {"fallback_language": set_fallback_language(app.engine, who.id, body.fallback_language)}


__all__ = ["add_workflow_routes"]
