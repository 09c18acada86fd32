"""Every answer that is not a success is the one error object ``{"error": {"code", "message",
"hint", "request_id"}}``: Postbote's own errors, the framework's (an unknown path, a wrong method,
a body that cannot be read) and anything unforeseen, which is logged with the request id and
answered 500 without a word about its insides. Each response carries ``X-Request-Id``."""

from __future__ import annotations

import logging
import secrets

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("postbote.api")

_HTTP_CODES = {400: ("request_unreadable", "The request could not be read.", "Send JSON in UTF-8 with Content-Type: application/json."),
               404: ("path_not_found", "There is no such path.", "See the paths at /docs."),
               405: ("method_not_allowed", "This path does not take that method.", "See the paths and methods at /docs."),
               413: ("request_too_large", "The request is too large.", "Send less in one request (MAX_REQUEST_BYTES).")}


def request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "") or ""


def error_response(request: Request, status: int, body: dict, headers: dict | None = None) -> JSONResponse:
    body = {**body, "request_id": request_id(request)}
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def install(api: FastAPI) -> None:
    @api.middleware("http")
    async def _request_id(request: Request, call_next):
        request.state.request_id = secrets.token_hex(8)
        response = await call_next(request)
        response.headers["X-Request-Id"] = request.state.request_id
        return response

    @api.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code, message, hint = _HTTP_CODES.get(error.status_code, ("http_error", "The request was refused.", "See /docs."))
        return error_response(request, error.status_code, {"code": code, "message": message, "hint": hint},
                              headers=getattr(error, "headers", None))

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error("request %s failed: %s", request_id(request), error.__class__.__name__, exc_info=error)
        response = error_response(request, 500, {
            "code": "internal_error", "message": "Postbote failed to answer this request.",
            "hint": "Try again; if it persists, give the operators the request_id."})
        response.headers["X-Request-Id"] = request_id(request)
        return response



class BodyLimit:
    """Refuse a request body over ``max_bytes`` before the application reads it: at once when
    Content-Length says so; a body without one (chunked) is taken in up to the limit first, and
    refused as soon as it passes it. Either way the answer is the error object, 413."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit():
            if int(declared) > self.max_bytes:
                return await self._refuse(scope, receive, send)
            return await self.app(scope, receive, send)
        messages, seen = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                return await self._refuse(scope, receive, send)
            if not message.get("more_body"):
                break
        replay = iter(messages)

        async def replayed():
            return next(replay, None) or await receive()

        return await self.app(scope, replayed, send)

    async def _refuse(self, scope, receive, send):
        body = {"code": "request_too_large", "message": f"The request is larger than {self.max_bytes} bytes.",
                "hint": "Send less in one request (MAX_REQUEST_BYTES).", "request_id": secrets.token_hex(8)}
        response = JSONResponse({"error": body}, status_code=413, headers={"Connection": "close",
                                                                           "X-Request-Id": body["request_id"]})
        await response(scope, receive, send)
