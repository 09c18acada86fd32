"""Every answer that is not a success is the one error object ``{"error": {"code", "message",
"hint", "request_id"}}``: Postbote's own errors, the framework's (an unknown path, a wrong method,
a body that cannot be read) and anything unforeseen, which is logged with the request id and
answered 500 without a word about its insides. Each response carries ``X-Request-Id``."""

from __future__ import annotations

import json
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


class NoNul:
    """Refuse a NUL character (U+0000) anywhere in a request — path, query or a string of the JSON
    body, keys included — with 422 ``request_invalid``, before the application sees it. No address,
    header, text, name or key of Postbote's has a use for one (SMTP does not carry it), and
    PostgreSQL cannot store it: such a request would be kept on SQLite and fail with 500 on
    PostgreSQL. The body is already bounded by ``BodyLimit``, which runs first."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if "\x00" in scope.get("path", "") or b"%00" in (scope.get("query_string") or b""):
            return await self._refuse(scope, receive, send, "the path or query")
        messages = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        if b"\\u0000" in body and _holds_nul(body):
            return await self._refuse(scope, receive, send, "the body")
        replay = iter(messages)

        async def replayed():
            return next(replay, None) or await receive()

        return await self.app(scope, replayed, send)

    async def _refuse(self, scope, receive, send, where: str):
        body = {"code": "request_invalid", "message": f"{where.capitalize()} holds a NUL character (U+0000).",
                "hint": "Leave out NUL characters: no value Postbote takes may hold one.",
                "request_id": secrets.token_hex(8)}
        response = JSONResponse({"error": body}, status_code=422, headers={"X-Request-Id": body["request_id"]})
        await response(scope, receive, send)


def _holds_nul(body: bytes) -> bool:
    try:
        data = json.loads(body)
    except ValueError:
        return False  # not JSON: the application answers it as it answers any unreadable body
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
