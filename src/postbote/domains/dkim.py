"""DKIM signing (RFC 6376), rsa-sha256 with relaxed/relaxed canonicalisation.

Written here rather than through dkimpy, whose RSA step is pure Python (about 135 signatures/s
on this hardware, and re-parsing the PEM key on every call): canonicalisation is a few lines of
the RFC, and the RSA step runs in ``cryptography`` with the key parsed once. dkimpy stays in the
tests as the independent verifier."""

from __future__ import annotations

import base64
import hashlib
import re
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# Signed in this order; From is listed twice so that a second From added on the way breaks the
# signature (RFC 6376 §8.15, "over-signing").
SIGNED_HEADERS = ("from", "from", "reply-to", "to", "cc", "subject", "date", "message-id",
                  "mime-version", "content-type", "content-transfer-encoding",
                  "list-unsubscribe", "list-unsubscribe-post")  # RFC 8058 §4: both must be signed
_WSP = re.compile(rb"[ \t]+")
_TRAILING_WSP = re.compile(rb"[ \t]+\r\n")


def canonical_body(body: bytes) -> bytes:
    """RFC 6376 §3.4.4 relaxed body canonicalisation."""
    # The regular expressions cost more than the RSA step's share on a 4 KB body; most bodies
    # (quoted-printable, plain prose) have nothing for them to do.
    if b"\t" in body or b"  " in body:
        body = _WSP.sub(b" ", body)
    if b" \r\n" in body:
        body = _TRAILING_WSP.sub(b"\r\n", body)
    body = body.rstrip(b"\r\n")
    return body + b"\r\n" if body else b""


def canonical_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 §3.4.2 relaxed header canonicalisation: ``name:value`` plus CRLF."""
    value = value.replace(b"\r\n", b"")
    value = _WSP.sub(b" ", value).strip(b" ")
    return name.strip().lower() + b":" + value + b"\r\n"


def split_message(raw: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """(headers as (name, value-with-folding), body). The message uses CRLF line ends."""
    head, _, body = raw.partition(b"\r\n\r\n")
    headers: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + b"\r\n" + line)
        else:
            name, _, value = line.partition(b":")
            headers.append((name, value))
    return headers, body


def sign(raw: bytes, *, domain: str, selector: str, key: rsa.RSAPrivateKey, now: int | None = None) -> bytes:
    """The message with a DKIM-Signature header in front."""
    headers, body = split_message(raw)
    body_hash = base64.b64encode(hashlib.sha256(canonical_body(body)).digest()).decode()
    present = {name.strip().lower().decode("ascii", "replace") for name, _ in headers}
    signed = [h for h in SIGNED_HEADERS if h in present or h == "from"]
    # Each listed name takes the next occurrence from the bottom up (RFC 6376 §5.4.2).
    remaining: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        remaining.setdefault(name.strip().lower(), []).append(value)
    hashed = bytearray()
    for name in signed:
        values = remaining.get(name.encode())
        if values:
            hashed += canonical_header(name.encode(), values.pop())
    tags = (f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s={selector};\r\n"
            f"\tt={int(now if now is not None else time.time())}; h={':'.join(signed)};\r\n"
            f"\tbh={body_hash};\r\n\tb=")
    hashed += canonical_header(b"DKIM-Signature", b" " + tags.encode())[:-2]  # no CRLF on this one
    signature = base64.b64encode(key.sign(bytes(hashed), padding.PKCS1v15(), hashes.SHA256())).decode()
    folded = "\r\n\t ".join(signature[i:i + 70] for i in range(0, len(signature), 70))
    return f"DKIM-Signature: {tags}{folded}\r\n".encode() + raw
