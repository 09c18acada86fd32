"""``Idempotency-Key`` on every POST that acts under an API key (all of ``/v1`` but the one-click
unsubscribe link, which has no key). The same key with the same request within 24 hours gets the
first answer again, its status and body, marked ``Idempotent-Replayed: true``, and nothing is done
a second time; the same key with another request is 409 ``idempotency_key_reused``; while the
first is still running, 409 ``idempotency_in_progress``; a key that is not 1–255 printable ASCII
characters is 422 ``idempotency_key_invalid``.

Kept: every answer below 500 but 401, 403 and 429 — those come before the operation ran (a
wrong key, a suspended tenant, a rate limit) and may be different next time. A 5xx answer, or a
request that raised before answering, releases the key so the caller can try again. An answer
larger than ``IDEMPOTENCY_MAX_ANSWER_BYTES`` is not kept: the key stays used, and a repeat is 409
``idempotency_answer_too_large`` (the operation is not done again)."""

from __future__ import annotations

import logging
import secrets

import anyio.to_thread
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from .. import idempotency as store

log = logging.getLogger("postbote.api")

NOT_KEPT = {401, 403, 429}


def _error(scope, status: int, code: str, message: str, hint: str) -> JSONResponse:
    request_id = (scope.get("state") or {}).get("request_id") or secrets.token_hex(8)
    return JSONResponse({"error": {"code": code, "message": message, "hint": hint, "request_id": request_id}},
                        status_code=status)


class IdempotencyKeys:
    def __init__(self, app, engine: Engine, max_answer_bytes: int):
        self.app, self.engine, self.max_answer_bytes = app, engine, max_answer_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not applies_to(scope["method"], scope["path"]):
            return await self.app(scope, receive, send)
        headers = scope.get("headers") or []
        keys = [v for k, v in headers if k == b"idempotency-key"]
        if not keys:
            return await self.app(scope, receive, send)
        key = keys[0].decode("latin-1")
        if len(keys) > 1 or not store.key_is_valid(key):
            return await _error(scope, 422, "idempotency_key_invalid",
                                "The Idempotency-Key must be one header of 1 to 255 printable ASCII characters.",
                                "Use e.g. a UUID per operation, and send the same one when you repeat it.")(scope, receive, send)
        authorization = dict(headers).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return await self.app(scope, receive, send)  # answered 401 there; nothing to keep
        caller = store.Caller.of(token.strip())

        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        replay = iter(messages)

        async def replayed():
            return next(replay, None) or await receive()

        lookup = caller.lookup("POST", scope["path"], key)
        fingerprint = caller.fingerprint(scope.get("query_string", b""), body)
        taken = await anyio.to_thread.run_sync(store.claim, self.engine, lookup, fingerprint)
        if taken.outcome == "reused":
            return await _error(scope, 409, "idempotency_key_reused",
                                "This Idempotency-Key was used with another request in the last 24 hours.",
                                "Use a new key for a new operation; repeat a request only exactly as first sent.")(scope, receive, send)
        if taken.outcome == "running":
            return await _error(scope, 409, "idempotency_in_progress",
                                "A request with this Idempotency-Key is still being handled.",
                                "Wait for its answer, or send the same request again in a moment.")(scope, receive, send)
        if taken.outcome == "replay":
            return await self._replay(scope, receive, send, caller, lookup, taken)

        started: dict = {}
        chunks: list[bytes] = []

        async def capture(message):
            if message["type"] == "http.response.start":
                started.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, replayed, capture)
        except BaseException:
            await anyio.to_thread.run_sync(store.release, self.engine, lookup)
            raise
        status = started.get("status", 500)
        answer = b"".join(chunks)
        try:
            if status >= 500 or status in NOT_KEPT:
                await anyio.to_thread.run_sync(store.release, self.engine, lookup)
            else:
                content_type = dict(started.get("headers") or []).get(b"content-type", b"").decode("latin-1") or None
                sealed = caller.seal(lookup, answer) if len(answer) <= self.max_answer_bytes else None
                await anyio.to_thread.run_sync(store.finish, self.engine, lookup, status, content_type, sealed)
        except Exception as error:  # the answer is given all the same; the key frees itself after its lock
            log.error("idempotency key not recorded: %s", error.__class__.__name__, exc_info=error)
        await send(started or {"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": answer})

    async def _replay(self, scope, receive, send, caller: store.Caller, lookup: str, taken: store.Claim):
        if taken.answer is None:
            return await _error(scope, 409, "idempotency_answer_too_large",
                                f"The request with this Idempotency-Key was done (status {taken.status}); its answer "
                                "was too large to keep, and it is not done again.",
                                "Read the result with a GET, or use a new key to do it again.")(scope, receive, send)
        answer = caller.open(lookup, taken.answer)
        headers = [(b"content-length", str(len(answer)).encode()), (b"idempotent-replayed", b"true")]
        if taken.content_type:
            headers.append((b"content-type", taken.content_type.encode("latin-1")))
        await send({"type": "http.response.start", "status": taken.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


def applies_to(method: str, path: str) -> bool:
    return method == "POST" and path.startswith("/v1/") and not path.startswith("/v1/unsubscribe/")


def document(api) -> None:
    """Name the header on every POST it applies to in the OpenAPI document (at /docs)."""
    make = api.openapi

    def openapi() -> dict:
        if api.openapi_schema is not None:
            return api.openapi_schema
        doc = make()
        for path, item in doc.get("paths", {}).items():
            op = item.get("post")
            if op is None or not applies_to("POST", path):
                continue
            op.setdefault("parameters", []).append({
                "name": "Idempotency-Key", "in": "header", "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": store.MAX_KEY_LENGTH},
                "description": "1–255 printable ASCII characters. The same key and request within 24 hours get the first "
                               "answer again (header Idempotent-Replayed: true) and are done once; another request is 409 "
                               "idempotency_key_reused, one still running 409 idempotency_in_progress."})
        api.openapi_schema = doc
        return doc

    api.openapi = openapi
