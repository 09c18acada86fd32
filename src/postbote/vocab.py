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
    HELD = "held"  # not sent: the sender asked for was not verified and the tenant's policy is hold
    CANCELLED = "cancelled"  # not sent: the tenant cancelled it before it left


PENDING_STATES = (DeliveryState.QUEUED, DeliveryState.DEFERRED)
FINAL_STATES = (DeliveryState.DELIVERED, DeliveryState.BOUNCED, DeliveryState.EXPIRED)


class SenderPolicy(StrEnum):
    """What happens when a tenant asks to send from a domain that is not verified (now)."""

    FALLBACK = "fallback"  # send from the platform's default sender, Reply-To the address asked for
    HOLD = "hold"  # keep the message held, with the reason


class DomainState(StrEnum):
    PENDING = "pending"  # added; its records are not (all) in DNS yet
    VERIFIED = "verified"  # DKIM CNAMEs resolve to the published keys, return path to the platform
    FAILED = "failed"  # never verified, and a record points somewhere else
    BROKEN = "broken"  # was verified, is not now


class RecordStatus(StrEnum):
    OK = "ok"
    MISSING = "missing"  # no such record
    WRONG = "wrong"  # present, with another value
    ERROR = "error"  # DNS did not answer


class KeyState(StrEnum):
    ACTIVE = "active"  # signs new mail
    NEXT = "next"  # published, waiting to take over at the next rotation
    RETIRED = "retired"  # no longer signs; stays published so mail in transit still verifies


class AttemptOutcome(StrEnum):
    """What one attempt ended in, for one recipient."""

    DELIVERED = "delivered"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


class TlsMode(StrEnum):
    """STARTTLS policy towards receiving servers."""

    OPPORTUNISTIC = "opportunistic"  # use STARTTLS when offered, certificate not checked
    REQUIRED = "required"  # refuse to send in clear; defer when STARTTLS is missing
    VERIFY = "verify"  # required, and the certificate must be valid for the MX host (PKIX)
    OFF = "off"  # never start TLS


class EventKind(StrEnum):
    """Lines of a message's timeline."""

    ACCEPTED = "accepted"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    EXPIRED = "expired"
    HELD = "held"
    RELEASED = "released"  # held mail let go: by hand, or because its sender domain was verified
    CANCELLED = "cancelled"
    COMPLAINED = "complained"  # the recipient reported the message as spam (ARF)
    REPORT = "report"  # a bounce or report arrived that changed nothing (delayed, unreadable)
    REPORT_REFUSED = "report_refused"  # a report about an address that was no recipient of the message


class SuppressionReason(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBED = "unsubscribed"
    MANUAL = "manual"


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
    # Finer than the above where the right action differs (issue: real bounces, Sisimai's reasons).
    HOST_UNKNOWN = "host_unknown"  # the recipient's domain does not exist or accepts no mail: fix the domain
    MAILBOX_DISABLED = "mailbox_disabled"  # the mailbox exists but is switched off: ask for a current address
    EXPIRED = "expired"  # a relay tried for days and gave up: the address may be fine


class MessageClass(StrEnum):
    """Why a message is sent: a bulk unsubscribe stops bulk mail only (RFC 8058, Gmail/Yahoo 2024)."""

    TRANSACTIONAL = "transactional"  # an interview invitation, a signature request, a password reset
    BULK = "bulk"  # a mass mailing to candidates, a newsletter: carries one-click unsubscribe


class EventType(StrEnum):
    """The events of the HR platform a workflow can be triggered by."""

    EMPLOYEE_CREATED = "employee.created"
    EMPLOYEE_FIRST_DAY = "employee.first_day"
    EMPLOYEE_BIRTHDAY = "employee.birthday"
    ABSENCE_REQUESTED = "absence.requested"
    ABSENCE_APPROVED = "absence.approved"
    ABSENCE_REJECTED = "absence.rejected"
    DOCUMENT_EXPIRING = "document.expiring"
    CANDIDATE_APPLIED = "candidate.applied"
    CANDIDATE_STAGE_CHANGED = "candidate.stage_changed"
    CANDIDATE_REJECTED = "candidate.rejected"
    INTERVIEW_SCHEDULED = "interview.scheduled"
    OFFER_SENT = "offer.sent"
    SIGNATURE_REQUESTED = "signature.requested"
    SIGNATURE_REMINDER = "signature.reminder"
    SIGNATURE_COMPLETED = "signature.completed"


class Role(StrEnum):
    """Whom an e-mail action writes to, resolved from the event's people."""

    EMPLOYEE = "employee"
    MANAGER = "manager"
    CANDIDATE = "candidate"
    HR_CONTACT = "hr_contact"
    SIGNER = "signer"


class Outcome(StrEnum):
    """What a workflow did with one event, for one recipient (or why it did nothing)."""

    SENT = "sent"  # a message was queued (or held by the sender policy)
    NO_WORKFLOW = "no_workflow"
    CONDITION_FALSE = "condition_false"
    DELAYED = "delayed"  # waits until its time
    RECIPIENT_WITHOUT_ADDRESS = "recipient_without_address"
    RECIPIENT_SUPPRESSED = "recipient_suppressed"
    RECIPIENT_REFUSED = "recipient_refused"  # syntax, domain, mail server
    TEMPLATE_FAILED = "template_failed"  # rendered at save time, failed with this event's data
    WOULD_SEND = "would_send"  # dry run
    COLLECTED = "collected"  # added to the recipient's digest, sent when it is due
    WORKFLOW_DISABLED = "workflow_disabled"  # disabled while its mail was waiting for its time
    DELAY_FIELD_INVALID = "delay_field_invalid"  # the date a delay counts from is missing or no date
