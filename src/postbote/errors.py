"""The one exception tree of Postbote.

    PostboteError                 code, message, hint — what every face shows a user
    ├── ConfigError               a setting is missing or malformed
    ├── InputError                a request was refused; nothing was stored
    │   ├── HeaderInjectionError  a line break or control character in a header value
    │   ├── InvalidAddressError   an address Postbote cannot send to or from
    │   ├── InvalidMessageError   a message without recipients, subject or body
    │   └── TooLargeError         a request or message over its size limit (HTTP 413)
    ├── RateLimitedError          too many requests; retry_after says when to come back (429)
    ├── NotFoundError             the thing does not exist, or belongs to another tenant
    ├── AuthError                 no or a wrong API key
    ├── ForbiddenError            a valid key that may not do this: a suspended tenant, the wrong scope (403)
    ├── ConflictError             the thing exists already
    ├── StoreError                the database is unreachable or its schema is not current
    └── DnsUpdateError            the platform's DNS server refused or missed an update

Exceptions of the libraries below (aiosmtplib, ssl, dnspython, SQLAlchemy) are translated where
they are caught; delivery attempts never raise, they return an ``AttemptResult``.
"""

from __future__ import annotations


class PostboteError(Exception):
    """Base of every error a user can see: a stable code, one sentence and a hint."""

    code = "error"
    hint = ""

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint
        if code is not None:
            self.code = code

    details: list | None = None  # per-item errors, e.g. each refused recipient

    def to_dict(self) -> dict:
        out = {"code": self.code, "message": self.message, "hint": self.hint}
        if self.details is not None:
            out["details"] = self.details
        return out


class ConfigError(PostboteError):
    code = "config_invalid"
    hint = "Check the setting in postbote.toml or its POSTBOTE_* environment variable."


class InputError(PostboteError):
    code = "input_invalid"


class HeaderInjectionError(InputError):
    code = "header_injection"
    hint = ("Remove line breaks and control characters (CR, LF, TAB, VT, FF, U+0085, U+2028 …) from subjects, "
            "names and addresses.")


class InvalidAddressError(InputError):
    code = "address_invalid"
    hint = "Write the address as local-part@domain, e.g. anna.schmidt@example.com."


class InvalidMessageError(InputError):
    code = "message_invalid"


class TooLargeError(InputError):
    code = "message_too_large"


class RateLimitedError(PostboteError):
    code = "rate_limited"
    hint = "Slow down: wait the seconds in Retry-After, then send again."

    def __init__(self, message: str, *, retry_after: float, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class NotFoundError(PostboteError):
    code = "not_found"


class AuthError(PostboteError):
    code = "unauthorized"
    hint = "Send 'Authorization: Bearer <key>' with a key from 'postbote tenant key'."


class ForbiddenError(PostboteError):
    code = "forbidden"


class ConflictError(PostboteError):
    code = "conflict"


class StoreError(PostboteError):
    code = "store_unavailable"
    hint = "Check DATABASE_URL and run 'postbote init' to create or upgrade the schema."


class DnsUpdateError(PostboteError):
    code = "dns_update_failed"
    hint = "Check DNS_UPDATE_SERVER, the TSIG key name, secret and algorithm, and the server's update ACL."
