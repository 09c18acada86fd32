"""``create_api(app)``: the FastAPI application. Every request is made as one tenant, named by its
API key; a tenant never sees another tenant's messages (they answer 404, as if absent)."""

from __future__ import annotations

import asyncio
import logging
import os

import anyio
import anyio.to_thread

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .. import __version__
from .. import domain_service, holding
from ..app import App
from ..domains import get_domain, list_domains
from ..recipients import check_addresses, find_many
from ..recipients.suppression import export_csv, remove, search, search_page, suppress
from ..compose import Draft
from ..admins import AdminKey, authenticate_admin, chosen_language, is_admin_key, suspension_reason
from ..errors import (AuthError, ConflictError, ForbiddenError, InputError, NotFoundError, PostboteError, RateLimitedError,
                      StoreError, TooLargeError)
from ..limits import RateLimiter, retry_after_header
from ..durations import parse_duration
from ..explaining import LANGUAGES, message_story, record_feedback
from ..explaining import report as build_report
from ..sending import send
from ..tenants import Tenant, authenticate
from ..queue import list_messages
from ..views import accepted_json, message_json, message_page_json
from . import contract
from . import errors as api_errors
from .admin import add_admin_routes
from .idempotency import IdempotencyKeys, document as document_idempotency
from .paging import DEFAULT_PAGE, check_limit, decode_cursor, decode_int_cursor, page_json
from .allowlist import add_allowlist_routes
from .workflows import add_workflow_routes
from .keys import add_key_routes
from .webhooks import add_webhook_routes
from .schemas import (
    AddressCheckRequest,
    BatchRequest,
    BatchResponse,
    DomainRequest,
    ErrorResponse,
    FeedbackRequest,
    SendRequest,
    SendResponse,
    SuppressionRequest,
)

log = logging.getLogger("postbote.api")

_STATUS = [(TooLargeError, 413), (RateLimitedError, 429), (InputError, 422), (NotFoundError, 404), (AuthError, 401),
           (ForbiddenError, 403), (ConflictError, 409), (StoreError, 503)]
_ERRORS = {code: {"model": ErrorResponse} for code in (401, 403, 404, 409, 413, 422, 429)}


def create_api(app: App) -> FastAPI:
    api = FastAPI(title="Postbote", version=__version__, description="Send notification e-mail and see why it did or did not arrive.")
    bearer = HTTPBearer(auto_error=False)
    # Innermost of the middlewares: the request id is set when it runs, and bodies are already bounded.
    api.add_middleware(IdempotencyKeys, engine=app.engine, max_answer_bytes=app.settings.IDEMPOTENCY_MAX_ANSWER_BYTES)
    api_errors.install(api)
    api.add_middleware(api_errors.NoNul)  # inside BodyLimit: reads only bodies within the limit
    api.add_middleware(api_errors.BodyLimit, max_bytes=app.settings.MAX_REQUEST_BYTES)
    rates = RateLimiter(app.settings.API_RATE_LIMIT, 2 * app.settings.API_RATE_LIMIT)

    def tenant(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Tenant:
        if credentials is None:
            raise AuthError("No API key was given.")
        if is_admin_key(credentials.credentials):
            authenticate_admin(app.engine, credentials.credentials)  # a wrong or revoked one is a 401
            raise ForbiddenError("An admin key does not act as a tenant.", code="tenant_key_required",
                                 hint="Use the tenant's own API key (make one with POST /v1/admin/tenants/{name}/keys).")
        who = authenticate(app.engine, credentials.credentials)
        wait = rates.take(who.id)  # before any work is done for the request
        if wait:
            raise RateLimitedError(f"Too many requests: at most {app.settings.API_RATE_LIMIT:g} a second are taken.",
                                   retry_after=wait)
        if who.suspended:
            raise ForbiddenError(f"The tenant {who.name!r} is suspended: {suspension_reason(app.engine, who.id)}",
                                 code="tenant_suspended",
                                 hint="Your mail already queued is kept and waits; ask the platform's operators to resume you.")
        return who

    def admin(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> AdminKey:
        if credentials is None:
            raise AuthError("No admin key was given.", hint="Send 'Authorization: Bearer <admin key>' with a key from "
                                                            "'postbote admin key create'.")
        if not is_admin_key(credentials.credentials):
            authenticate(app.engine, credentials.credentials)  # a wrong or revoked one is a 401
            raise ForbiddenError("This operation needs an admin key; a tenant key cannot do it.", code="admin_key_required",
                                 hint="Make an admin key with 'postbote admin key create LABEL' on the platform's host.")
        by = authenticate_admin(app.engine, credentials.credentials)
        wait = rates.take(f"admin:{by.prefix}")
        if wait:
            raise RateLimitedError(f"Too many requests: at most {app.settings.API_RATE_LIMIT:g} a second are taken.",
                                   retry_after=wait)
        return by

    @api.exception_handler(PostboteError)
    async def _postbote_error(request: Request, error: PostboteError) -> JSONResponse:
        status = next((code for kind, code in _STATUS if isinstance(error, kind)), 500)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(error, RateLimitedError):
            headers = {"Retry-After": retry_after_header(error.retry_after)}
        return api_errors.error_response(request, status, error.to_dict(), headers=headers)

    @api.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p != "body")
        body = {"code": "request_invalid", "message": f"{where or 'body'}: {first['msg']}.",
                "hint": "See the request schema at /docs."}
        return api_errors.error_response(request, 422, body)

    @api.post("/v1/messages", status_code=202, response_model=SendResponse, responses=_ERRORS)
    def post_message(body: SendRequest, who: Tenant = Depends(tenant)) -> dict:
        """Queue a message. 202: accepted, each recipient `queued`."""
        draft = Draft(sender=body.sender, recipients=body.to, subject=body.subject, text=body.text,
                      html=body.html, reply_to=body.reply_to, cc=body.cc, bcc=body.bcc, shared=body.shared)
        return accepted_json(send(app.engine, app.settings, who, draft, resolver=app.resolver,
                                     acceptor=app.acceptor))

    batch_lanes = anyio.CapacityLimiter(max(2, 2 * (os.cpu_count() or 1)))

    @api.post("/v1/messages/batch", response_model=BatchResponse, responses=_ERRORS)
    async def post_batch(body: BatchRequest, who: Tenant = Depends(tenant)) -> dict:
        """Queue many messages at once, each answered on its own: `status` 202 with the message as
        POST /v1/messages answers it, or the status and error object that POST would have given.
        Messages are accepted side by side, so their store writes share group commits."""
        if len(body.messages) > app.settings.BATCH_MAX_MESSAGES:
            raise InputError(f"The batch has {len(body.messages)} messages; at most {app.settings.BATCH_MAX_MESSAGES} are taken.",
                             code="batch_too_large", hint="Split it into several batches (BATCH_MAX_MESSAGES).")

        async def one(index: int, data: dict) -> dict:
            try:
                item = SendRequest.model_validate(data)
            except ValidationError as invalid:
                first = invalid.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                return {"index": index, "status": 422, "error": {
                    "code": "request_invalid", "message": f"{where or 'message'}: {first['msg']}.",
                    "hint": "Each message is the body of a POST /v1/messages; see /docs."}}
            try:
                accepted = await anyio.to_thread.run_sync(post_message, item, who, limiter=batch_lanes)
            except PostboteError as error:
                status = next((code for kind, code in _STATUS if isinstance(error, kind)), 500)
                return {"index": index, "status": status, "error": error.to_dict()}
            except Exception as error:  # one message's failure is its own; the others keep their answers
                log.error("batch message %d failed: %s", index, error.__class__.__name__, exc_info=error)
                return {"index": index, "status": 500, "error": {
                    "code": "internal_error", "message": "Postbote failed to accept this message; it was not queued.",
                    "hint": "Send this message again; if it persists, tell the operators."}}
            return {"index": index, "status": 202, "message": accepted}

        results = list(await asyncio.gather(*(one(i, m) for i, m in enumerate(body.messages))))
        taken = sum(1 for r in results if r["status"] == 202)
        return {"accepted": taken, "refused": len(results) - taken, "results": results}

    @api.get("/v1/messages", responses=_ERRORS)
    def get_messages(recipient: str | None = None, state: str | None = None, limit: int = 50,
                     cursor: str | None = None, who: Tenant = Depends(tenant)) -> dict:
        """Your messages, newest first, each with its recipients' states. ``recipient``: part of an
        address; ``state``: a recipient in that state; ``limit`` 1–200; ``cursor``: the
        ``next_cursor`` of the page before (null on the last page)."""
        return message_page_json(list_messages(app.engine, tenant_id=who.id, recipient=recipient, state=state,
                                               limit=limit, cursor=cursor))

    @api.get("/v1/messages/{message_id}", responses=_ERRORS)
    def get_message(message_id: str, lang: str | None = None, who: Tenant = Depends(tenant)) -> dict:
        """Each recipient's state, every attempt with the receiving server's reply and its
        category, and an explanation of where it stands (``lang``: de, en or es; default: your
        default language, else the platform's)."""
        if lang is None:  # the tenant's default language, where explanations exist in it
            chosen = chosen_language(app.engine, who.id)
            lang = chosen if chosen in LANGUAGES else None
        return message_json(*message_story(app.engine, app.settings, message_id, lang=lang, tenant_id=who.id))

    @api.post("/v1/messages/{message_id}/release", responses=_ERRORS)
    def post_release(message_id: str, who: Tenant = Depends(tenant)) -> dict:
        """Send one of your held messages now, from the sender chosen at this moment (your verified
        domain, else the platform's default sender). 409 ``message_not_held`` when nothing is held."""
        done = holding.release(app.engine, app.settings, message_id, tenant_id=who.id)
        return {"id": done.id, "released": done.released, "sender": {"used": done.sender, "note": done.note}}

    @api.post("/v1/messages/{message_id}/cancel", responses=_ERRORS)
    def post_cancel(message_id: str, who: Tenant = Depends(tenant)) -> dict:
        """Cancel what has not left yet (held, queued, deferred). 409 when nothing is left."""
        return {"id": message_id, "cancelled": holding.cancel(app.engine, message_id, tenant_id=who.id)}

    @api.post("/v1/explanations/{explanation_id}/feedback", status_code=201, responses=_ERRORS)
    def post_feedback(explanation_id: str, body: FeedbackRequest, who: Tenant = Depends(tenant)) -> dict:
        """Rate an explanation shown to you (its ``id`` and ``lang`` come with the text)."""
        feedback_id = record_feedback(app.engine, who, explanation_id, helpful=body.helpful, lang=body.lang,
                                      message_id=body.message_id, comment=body.comment)
        return {"id": feedback_id, "explanation": explanation_id}

    @api.get("/v1/report", responses=_ERRORS)
    def get_report(since: str = "24h", who: Tenant = Depends(tenant)) -> dict:
        """Your outcomes by destination, state and reason since ``since`` (e.g. 30m, 24h, 7d)."""
        try:
            seconds = parse_duration(since)
        except ValueError as exc:
            raise InputError(str(exc), code="duration_invalid", hint="Write e.g. 30m, 24h or 7d.") from None
        return build_report(app.engine, since=seconds, tenant_id=who.id)

    @api.post("/v1/domains", status_code=201, responses=_ERRORS)
    def post_domain(body: DomainRequest, who: Tenant = Depends(tenant)) -> dict:
        """Add a sender domain. The answer lists the CNAME records your IT team publishes."""
        return domain_service.add(app, who.id, body.domain)

    @api.get("/v1/domains", responses=_ERRORS)
    def get_domains(limit: int = DEFAULT_PAGE, cursor: str | None = None, who: Tenant = Depends(tenant)) -> dict:
        """Your sender domains by name, with their state and records: ``domains``, ``next_cursor``
        (``limit`` 1–200; ``cursor``: the ``next_cursor`` of the page before)."""
        found = list_domains(app.engine, tenant_id=who.id, after=decode_cursor(cursor, "domains"), limit=check_limit(limit) + 1)
        return page_json("domains", "domains", found, limit, lambda d: d.name, lambda d: domain_service.domain_json(app, d))

    @api.get("/v1/domains/{domain}", responses=_ERRORS)
    def get_domain_records(domain: str, who: Tenant = Depends(tenant)) -> dict:
        """One of your domains: state and records, each with its status from the last check."""
        return domain_service.domain_json(app, get_domain(app.engine, domain, tenant_id=who.id))

    @api.delete("/v1/domains/{domain}", responses=_ERRORS)
    def delete_domain(domain: str, who: Tenant = Depends(tenant)) -> dict:
        """Remove one of your domains: its keys are deleted and withdrawn from the platform zone."""
        return domain_service.remove(app, domain, who.id)

    @api.post("/v1/domains/{domain}/verify", responses=_ERRORS)
    def verify_domain(domain: str, who: Tenant = Depends(tenant)) -> dict:
        """Check the domain's records in DNS now."""
        return domain_service.verify(app, domain, who.id)

    @api.get("/v1/domains/{domain}/check", responses=_ERRORS)
    def check_domain(domain: str, who: Tenant = Depends(tenant)) -> dict:
        """What receivers will see: SPF, DKIM, DMARC, MX, partners, and a verdict with the fix."""
        return domain_service.check(app, domain, who.id)

    @api.post("/v1/addresses/check", responses=_ERRORS)
    def post_address_check(body: AddressCheckRequest, who: Tenant = Depends(tenant)) -> list[dict]:
        """Check addresses as a message would: syntax, domain, mail server, your suppression list,
        and the address probably meant. In the order given."""
        if len(body.addresses) > app.settings.MAX_RECIPIENTS:
            raise InputError(f"{len(body.addresses)} addresses; at most {app.settings.MAX_RECIPIENTS} are checked at once.",
                             code="too_many_recipients", hint="Check them in several requests.")
        suppressed = find_many(app.engine, who.id, body.addresses)
        return [r.to_dict() for r in asyncio.run(check_addresses(body.addresses, app.settings, app.resolver, suppressed))]

    @api.get("/v1/suppressions", responses=_ERRORS)
    def get_suppressions(search_text: str = Query("", alias="search"), limit: int = DEFAULT_PAGE, cursor: str | None = None,
                         who: Tenant = Depends(tenant)) -> dict:
        """Your suppressed addresses, the newest entry first: ``suppressions``, ``next_cursor``;
        ``search`` filters by part of the address, ``limit`` 1–200, ``cursor`` as given."""
        found = search_page(app.engine, who.id, search_text, limit=check_limit(limit) + 1,
                            before=decode_int_cursor(cursor, "suppressions"))
        return page_json("suppressions", "suppressions", found, limit, lambda r: r[0], lambda r: r[1].to_dict())

    @api.get("/v1/suppressions/export", responses=_ERRORS, response_class=PlainTextResponse)
    def export_suppressions(who: Tenant = Depends(tenant)) -> str:
        """Your suppression list as CSV."""
        return export_csv(search(app.engine, who.id, limit=1_000_000))

    @api.post("/v1/suppressions", status_code=201, responses=_ERRORS)
    def post_suppression(body: SuppressionRequest, who: Tenant = Depends(tenant)) -> dict:
        """Stop mail to an address (reason: manual, unsubscribed, complaint or hard_bounce)."""
        return suppress(app.engine, who.id, body.address, body.reason, detail=body.detail).to_dict()

    @api.delete("/v1/suppressions/{address:path}", responses=_ERRORS)
    def delete_suppression(address: str, reason: str, who: Tenant = Depends(tenant)) -> dict:
        """Allow mail to an address again; ``reason`` (why) is required and kept. The address may
        hold any character ('/' included), URL-encoded."""
        return {"address": remove(app.engine, who.id, address, reason), "removed": True}

    add_allowlist_routes(api, app, tenant, _ERRORS)
    add_workflow_routes(api, app, tenant, _ERRORS)
    add_key_routes(api, app, tenant, _ERRORS)
    add_webhook_routes(api, app, tenant, _ERRORS)
    add_admin_routes(api, app, admin, _ERRORS)
    document_idempotency(api)

    @api.get("/v1/health")
    def health() -> dict:
        app.check_store()
        return {"status": "ok", "version": __version__}

    contract.install(api)  # every operation's errors, documented from one table
    return api
