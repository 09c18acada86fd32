"""``create_api(app)``: the FastAPI application. Every request is made as one tenant, named by its
API key; a tenant never sees another tenant's messages (they answer 404, as if absent)."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .. import __version__
from ..app import App
from ..compose import Draft
from ..errors import AuthError, ConflictError, InputError, NotFoundError, PostboteError, StoreError
from ..queue import message_status
from ..sending import send
from ..tenants import Tenant, authenticate
from ..views import accepted_json, message_json
from .schemas import ErrorResponse, SendRequest, SendResponse

_STATUS = [(InputError, 422), (NotFoundError, 404), (AuthError, 401), (ConflictError, 409), (StoreError, 503)]
_ERRORS = {code: {"model": ErrorResponse} for code in (401, 404, 422)}


def create_api(app: App) -> FastAPI:
    api = FastAPI(title="Postbote", version=__version__, description="Send notification e-mail and see why it did or did not arrive.")
    bearer = HTTPBearer(auto_error=False)

    def tenant(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Tenant:
        if credentials is None:
            raise AuthError("No API key was given.")
        return authenticate(app.engine, credentials.credentials)

    @api.exception_handler(PostboteError)
    async def _postbote_error(_: Request, error: PostboteError) -> JSONResponse:
        status = next((code for kind, code in _STATUS if isinstance(error, kind)), 500)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"error": error.to_dict()}, status_code=status, headers=headers)

    @api.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p != "body")
        body = {"code": "request_invalid", "message": f"{where or 'body'}: {first['msg']}.",
                "hint": "See the request schema at /docs."}
        return JSONResponse({"error": body}, status_code=422)

    @api.post("/v1/messages", status_code=202, response_model=SendResponse, responses=_ERRORS)
    def post_message(body: SendRequest, who: Tenant = Depends(tenant)) -> dict:
        """Queue a message. 202: accepted, each recipient `queued`."""
        draft = Draft(sender=body.sender, recipients=body.to, subject=body.subject, text=body.text,
                      html=body.html, reply_to=body.reply_to)
        return accepted_json(send(app.engine, app.settings, who, draft))

    @api.get("/v1/messages/{message_id}", responses=_ERRORS)
    def get_message(message_id: str, who: Tenant = Depends(tenant)) -> dict:
        """Each recipient's state and every attempt with the receiving server's reply."""
        return message_json(message_status(app.engine, message_id, tenant_id=who.id))

    @api.get("/v1/health")
    def health() -> dict:
        app.check_store()
        return {"status": "ok", "version": __version__}

    return api
