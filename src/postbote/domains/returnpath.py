"""Return-path addresses that only the platform can make (VERP with a keyed MAC).

    bounces+<message id>.<last day>.<mac>@<return-path host>

The message id alone is no secret — every recipient sees the envelope sender — so the local part
also carries the last day (days since 1970-01-01, UTC) on which reports for the message are taken,
and an HMAC-SHA256 over both, cut to 80 bits, under a key derived from SECRET_KEY. The receiver
checks the MAC (in constant time) and the day before it accepts anything: a forged or guessed
address, or one past its day, gets the same answer as an address that never existed. Lower-case
hex throughout, because some relays lower-case local parts (RFC 5321 §2.4 lets them)."""

from __future__ import annotations

import hashlib
import hmac
import re
import time

PREFIX = "bounces+"
_MAC_HEX = 20  # 80 bits: an online guesser would need about 2**79 tries per message
_LOCAL = re.compile(r"^bounces\+([0-9a-f]{28})\.([0-9]{1,6})\.([0-9a-f]{20})$")
_INFO = b"postbote return path v1"


def _key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode("utf-8"), _INFO, hashlib.sha256).digest()


def _mac(secret_key: str, message_id: str, day: int) -> str:
    return hmac.new(_key(secret_key), f"{message_id}.{day}".encode("ascii"), hashlib.sha256).hexdigest()[:_MAC_HEX]


def today(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // 86400)


def return_path_local(secret_key: str, message_id: str, *, valid_days: int, now: float | None = None) -> str:
    """The local part for a new message: reports are taken until ``valid_days`` after today."""
    day = today(now) + valid_days
    return f"{PREFIX}{message_id}.{day}.{_mac(secret_key, message_id, day)}"


def return_path(secret_key: str, message_id: str, host: str, *, valid_days: int, now: float | None = None) -> str:
    return f"{return_path_local(secret_key, message_id, valid_days=valid_days, now=now)}@{host}"


def message_of(secret_key: str, local_part: str, *, now: float | None = None) -> str | None:
    """The message id a return-path local part stands for, or None when it is not one the
    platform made, or its last day has passed. Says nothing about why."""
    match = _LOCAL.match(local_part.lower())
    if match is None:
        return None
    message_id, day, mac = match.group(1), int(match.group(2)), match.group(3)
    if not hmac.compare_digest(mac, _mac(secret_key, message_id, day)):
        return None
    return message_id if day >= today(now) else None
