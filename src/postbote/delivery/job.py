"""A job is one message to one domain: the deliveries of its recipients there, sent in one
transaction. Turning a job's outcome into delivery updates happens here, in one place, for
replies from a server and for failures that never reached one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..db.schema import utcnow
from ..queue import AttemptRecord, ClaimedDelivery, DeliveryUpdate, QueuedMessage
from ..replies import Reply, classify, provider_of_mx
from ..vocab import AttemptOutcome, DeliveryState, ReplyCategory
from .retry import RetryPolicy, decide
from .transcript import Transcript


@dataclass(slots=True)
class Job:
    message: QueuedMessage
    domain: str
    source_ip: str | None
    deliveries: list[ClaimedDelivery]

    @property
    def recipients(self) -> list[str]:
        return [d.recipient for d in self.deliveries]

    @property
    def lease_expires_at(self) -> datetime:
        return min(d.lease_expires_at for d in self.deliveries)


@dataclass(frozen=True, slots=True)
class Route:
    """Where an attempt went, for the attempt record."""

    mx_host: str | None = None
    mx_ip: str | None = None
    tls: bool = False
    reused: bool = False


_OUTCOME = {
    DeliveryState.DELIVERED: AttemptOutcome.DELIVERED,
    DeliveryState.DEFERRED: AttemptOutcome.TEMPORARY,
    DeliveryState.EXPIRED: AttemptOutcome.TEMPORARY,
    DeliveryState.BOUNCED: AttemptOutcome.PERMANENT,
}


def outcome_updates(
    job: Job,
    replies: dict[str, Reply],
    *,
    started_at: datetime,
    route: Route,
    transcript: Transcript,
    policy: RetryPolicy,
) -> list[DeliveryUpdate]:
    """One update per delivery of the job, from the reply that decides each recipient's fate."""
    now = utcnow()
    duration_ms = int((now - started_at).total_seconds() * 1000)
    text = transcript.text()
    updates = []
    for delivery in job.deliveries:
        reply = replies[delivery.recipient]
        accepted = reply.code == 250
        meaning = None if accepted else classify(reply, route.mx_host)
        decision = decide(
            meaning,
            failures=delivery.attempts + 1,
            now=now,
            created_at=job.message.created_at,
            expires_at=job.message.expires_at,
            policy=policy,
        )
        attempt = AttemptRecord(
            started_at=started_at,
            duration_ms=duration_ms,
            outcome=_OUTCOME[decision.state].value,
            reply_code=reply.code,
            enhanced_code=reply.enhanced_code,
            reply_text=reply.text,
            category=meaning.category.value if meaning else None,
            provider=meaning.provider if meaning else provider_of_mx(route.mx_host),
            rule=meaning.rule if meaning else None,
            mx_host=route.mx_host,
            mx_ip=route.mx_ip,
            source_ip=job.source_ip,
            tls=route.tls,
            connection_reused=route.reused,
            transcript=text,
        )
        updates.append(
            DeliveryUpdate(
                delivery_id=delivery.id,
                message_id=job.message.id,
                state=decision.state,
                next_attempt_at=decision.next_attempt_at,
                source_ip=job.source_ip,
                attempt=attempt,
                reason=str(reply),
                at=now,
                recipient=delivery.recipient,
                **_suppression(meaning, decision.state),
            )
        )
    return updates


_DOMAIN_GONE = ("local.no-such-domain", "local.nxdomain-unconfirmed")
MAILBOX_FULL_SUPPRESSION = 30 * 86400  # a mailbox full until we gave up: not forever


def _suppression(meaning, state: DeliveryState) -> dict:
    """Dead addresses go on the tenant's suppression list: an unknown recipient for good, a
    mailbox that stayed full for a while (it may be emptied one day)."""
    if meaning is None:
        return {}
    if meaning.rule in _DOMAIN_GONE:
        return {}  # the domain is missing, not the mailbox: acceptance checks domains anyway
    if meaning.suppress and state is DeliveryState.BOUNCED:
        return {"suppress": True}
    if meaning.category is ReplyCategory.MAILBOX_FULL and state in (DeliveryState.BOUNCED, DeliveryState.EXPIRED):
        return {"suppress": True, "suppress_for": MAILBOX_FULL_SUPPRESSION}
    return {}


def same_reply(job: Job, reply: Reply) -> dict[str, Reply]:
    return {rcpt: reply for rcpt in job.recipients}
