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
    if reply.code is not None and reply.flat() and not status.diagnostic.startswith(str(reply.code)):
        # Keep what the reporter wrote before the quoted reply: "after MAIL FROM", "after end of
        # data" say at which step (RFC 5321 §3.3) the receiver refused, which the reply may not.
        before = status.diagnostic.split(str(reply.code), 1)[0]
        reply = Reply(reply.code, f"{reply.text}\n({before.strip()[-300:]})", reply.enhanced_code)
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
    transient = (status.status or "")[:1] == "4" or meaning.category is ReplyCategory.UNAVAILABLE
    if status.action == "failed" and transient and meaning.category in _TRANSIENT_ONLY:
        # RFC 3464 §2.3.3 "failed" with a transient status (RFC 3463 §3.1), or after the receiver
        # could not be reached or could not take mail: the reporting MTA kept trying until its own
        # lifetime ran out. That is an expiry, whatever the last answer was.
        return replace(meaning, category=ReplyCategory.EXPIRED, temporary=False, rule="dsn.failed-transient",
                       min_wait=0.0, suppress=False)
    return meaning
