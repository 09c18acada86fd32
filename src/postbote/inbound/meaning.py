"""What one recipient's line of a report means: the reported diagnostic read as the reply it
quotes, so an asynchronous bounce is classified and explained like a synchronous reply."""

from __future__ import annotations

from dataclasses import replace

from ..replies import Classification, Reply, classify
from ..vocab import ReplyCategory
from .parse import RecipientStatus


def reply_of(status: RecipientStatus) -> Reply:
    """The receiving server's reply inside the diagnostic; when the notice quotes none, the text
    with a code of the reported class (554 or 451: "transaction failed", nothing more specific),
    so that it is not taken for a failure Postbote saw itself."""
    reply = Reply.parse(status.diagnostic) if status.diagnostic else Reply.local("", status.status)
    if reply.code is None:
        klass = (status.status or "5")[0]
        reply = Reply(451 if klass == "4" else 554, reply.text, reply.enhanced_code)
    if reply.enhanced_code is None and status.status:
        reply = Reply(reply.code, reply.text, status.status)
    return reply


# Categories that only say "not now"; the text said nothing more specific.
_TRANSIENT_ONLY = (ReplyCategory.UNAVAILABLE, ReplyCategory.UNKNOWN, ReplyCategory.GREYLISTED)


def classify_recipient(status: RecipientStatus, mx_host: str | None = None) -> Classification:
    meaning = classify(reply_of(status), mx_host)
    if status.action == "failed" and (status.status or "")[:1] == "4" and meaning.category in _TRANSIENT_ONLY:
        # RFC 3464 §2.3.3 "failed" with a transient status (RFC 3463 §3.1): the reporting MTA kept
        # trying until its own lifetime ran out. That is an expiry, whatever the last answer was.
        return replace(meaning, category=ReplyCategory.EXPIRED, temporary=False, rule="dsn.failed-transient",
                       min_wait=0.0, suppress=False)
    return meaning
