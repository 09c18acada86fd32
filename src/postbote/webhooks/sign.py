"""Signatures as the Standard Webhooks specification defines them (v1, symmetric).

A secret is ``whsec_`` and the base64 of 24 random bytes. A call carries ``webhook-id`` (the
event id, the same on every retry), ``webhook-timestamp`` (Unix seconds of this attempt) and
``webhook-signature``: ``v1,`` and the base64 HMAC-SHA256, under the secret's bytes, of
``{id}.{timestamp}.{body}``. During a rotation's overlap the header holds one signature per
secret, separated by spaces, so a receiver holding either secret accepts the call."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, event_id: str, timestamp: int, body: str) -> str:
    mac = hmac.new(_key(secret), f"{event_id}.{timestamp}.{body}".encode("utf-8"), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def headers(secrets_: list[str], event_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, event_id, timestamp, body) for s in secrets_),
    }
