"""Idempotency keys: a POST repeated with the same ``Idempotency-Key`` is answered again, not done
again. This module is the store and the cryptography; ``api/idempotency.py`` is the HTTP side.

A key belongs to the credential that used it, the method and the path: the row is found by the
SHA-256 of the credential's own SHA-256, the method, the path and the key, so it names none of
them. The answer may hold a secret (a new API key), so it is kept only encrypted: AES-GCM under a
key derived by HKDF-SHA256 from the caller's bearer token, which Postbote never stores — only the
same caller can ever read it back. The request's fingerprint is an HMAC under another key derived
the same way, so the store cannot be used to confirm a guess at what a request held.

Rows live 24 hours from the first request; they are deleted lazily, by the next request that
carries a key (an index on ``created_at`` keeps that cheap)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from .db.schema import idempotency_keys as table
from .db.schema import utcnow

LIFETIME = timedelta(hours=24)
LOCK = timedelta(minutes=10)  # a request still running after this is taken for dead
MAX_KEY_LENGTH = 255
_SALT = b"postbote idempotency-key"


def key_is_valid(key: str) -> bool:
    """1 to 255 printable ASCII characters (space to tilde)."""
    return 1 <= len(key) <= MAX_KEY_LENGTH and all(" " <= c <= "~" for c in key)


def _derive(token: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=purpose).derive(token.encode())


@dataclass(frozen=True, slots=True)
class Caller:
    """What is derived from one bearer token; the token itself is not kept here."""
    scope: str  # SHA-256 of the token, as the key tables keep it
    answer_key: bytes
    fingerprint_key: bytes

    @classmethod
    def of(cls, token: str) -> "Caller":
        return cls(hashlib.sha256(token.encode()).hexdigest(), _derive(token, b"answer v1"),
                   _derive(token, b"fingerprint v1"))

    def lookup(self, method: str, path: str, key: str) -> str:
        return hashlib.sha256("\n".join((self.scope, method.upper(), path, key)).encode()).hexdigest()

    def fingerprint(self, query: bytes, body: bytes) -> str:
        """The same request gives the same fingerprint: a JSON body counts by its value (key
        order and spacing aside), any other body by its bytes."""
        try:
            canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"),
                                   ensure_ascii=False).encode()
        except (ValueError, UnicodeDecodeError):
            canonical = b"raw:" + body
        return hmac.new(self.fingerprint_key, query + b"\n" + canonical, hashlib.sha256).hexdigest()

    def seal(self, lookup: str, answer: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(self.answer_key).encrypt(nonce, answer, lookup.encode())

    def open(self, lookup: str, sealed: bytes) -> bytes:
        """Raises ``cryptography.exceptions.InvalidTag`` for any other caller's key."""
        return AESGCM(self.answer_key).decrypt(sealed[:12], sealed[12:], lookup.encode())


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: str  # new | replay | reused | running
    status: int | None = None
    content_type: str | None = None
    answer: bytes | None = None  # sealed; None with replay: it was too large to keep


def expire(engine: Engine, now: datetime | None = None) -> int:
    """Delete every row older than 24 hours; how many went."""
    with engine.begin() as conn:
        return conn.execute(delete(table).where(table.c.created_at < (now or utcnow()) - LIFETIME)).rowcount


def claim(engine: Engine, lookup: str, fingerprint: str, *, now: datetime | None = None) -> Claim:
    """Take the key for a request (``new``), or say why not: its answer is there (``replay``), it
    was used with another request (``reused``), or that request is still running (``running``)."""
    now = now or utcnow()
    expire(engine, now)
    for _ in range(3):  # a row may vanish between the insert and the read (released, expired)
        try:
            with engine.begin() as conn:
                conn.execute(insert(table).values(lookup=lookup, fingerprint=fingerprint, state="running",
                                                  locked_until=now + LOCK, created_at=now))
            return Claim("new")
        except IntegrityError:
            pass
        with engine.begin() as conn:
            row = conn.execute(select(table).where(table.c.lookup == lookup)).first()
            if row is None:
                continue
            if not hmac.compare_digest(row.fingerprint, fingerprint):
                return Claim("reused")
            if row.state == "done":
                return Claim("replay", row.status, row.content_type, row.answer)
            if row.locked_until is not None and row.locked_until > now:
                return Claim("running")
            taken = conn.execute(update(table).where(table.c.lookup == lookup, table.c.state == "running",
                                                     table.c.locked_until == row.locked_until)
                                 .values(locked_until=now + LOCK)).rowcount
            return Claim("new" if taken == 1 else "running")
    return Claim("running")


def finish(engine: Engine, lookup: str, status: int, content_type: str | None, sealed: bytes | None) -> None:
    """Keep the answer of the request that holds the key."""
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.lookup == lookup, table.c.state == "running")
                     .values(state="done", status=status, content_type=content_type, answer=sealed,
                             locked_until=None))


def release(engine: Engine, lookup: str) -> None:
    """Give the key back unused (the request failed): the caller may try again with it."""
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.lookup == lookup, table.c.state == "running"))
