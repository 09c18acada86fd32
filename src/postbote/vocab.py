"""Closed vocabularies. Every state, outcome and mode Postbote stores or prints is one of these;
foreign terms are mapped in with dict literals and an UNKNOWN fallback, never passed through."""

from __future__ import annotations

from enum import StrEnum


class DeliveryState(StrEnum):
    """Where one recipient of one message stands."""

    QUEUED = "queued"  # accepted, not yet attempted
    DEFERRED = "deferred"  # attempted, temporary failure, next attempt scheduled
    DELIVERED = "delivered"  # the receiving server answered 250 to DATA
    BOUNCED = "bounced"  # permanent failure; no further attempt
    EXPIRED = "expired"  # temporary failures until MAX_LIFETIME ran out


PENDING_STATES = (DeliveryState.QUEUED, DeliveryState.DEFERRED)
FINAL_STATES = (DeliveryState.DELIVERED, DeliveryState.BOUNCED, DeliveryState.EXPIRED)


class AttemptOutcome(StrEnum):
    """What one attempt ended in, for one recipient."""

    DELIVERED = "delivered"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


class TlsMode(StrEnum):
    """STARTTLS policy towards receiving servers."""

    OPPORTUNISTIC = "opportunistic"  # use STARTTLS when offered, certificate not checked
    REQUIRED = "required"  # refuse to send in clear; defer when STARTTLS is missing
    OFF = "off"  # never start TLS


class EventKind(StrEnum):
    """Lines of a message's timeline."""

    ACCEPTED = "accepted"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    EXPIRED = "expired"


class ReplyCategory(StrEnum):
    """Why a receiver did not take a message (replies/). The rules name one of these."""

    INVALID_RECIPIENT = "invalid_recipient"  # the address or its domain does not exist
    MAILBOX_FULL = "mailbox_full"
    GREYLISTED = "greylisted"  # "come back later" to a sender not seen before
    RATE_LIMITED = "rate_limited"  # too much, too fast, from this sender or IP
    BLOCKLISTED = "blocklisted"  # the sending IP or domain is on a block list
    AUTH_FAILURE = "auth_failure"  # SPF, DKIM, DMARC or PTR did not pass
    SPAM_CONTENT = "spam_content"  # the content looked like spam or malware
    POLICY = "policy"  # a receiver's local rule: relaying, TLS, forwarding, size of lists
    MESSAGE_TOO_LARGE = "message_too_large"
    UNAVAILABLE = "unavailable"  # no server answered, or it could not take mail now
    UNKNOWN = "unknown"
