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
