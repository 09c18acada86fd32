"""The tables. Core tables, not ORM classes: the hot paths (claim, record) are bulk statements,
and the same statements run on SQLite and PostgreSQL.

A delivery row is the retry state of one recipient of one message: its state, attempt count,
next attempt time, the source IP it keeps, and the lease of the worker that holds it.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite has no BIGINT autoincrement; INTEGER PRIMARY KEY is its rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on both dialects (SQLite stores them naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso_utc(value: datetime | None) -> str | None:
    """How every face writes a time: ISO 8601 in UTC with a Z."""
    return value.isoformat().replace("+00:00", "Z") if value else None


tenants = Table(
    "tenants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("sender_policy", String(16), nullable=False, server_default="fallback"),
    Column("created_at", UTCDateTime, nullable=False),
    # Set by an admin: the tenant's API calls answer 403 and its pending mail waits (not claimed).
    Column("suspended_at", UTCDateTime),
    Column("suspended_reason", Text),
    Column("time_zone", String(64)),  # IANA name; delays at a local time use it when they name none
    Column("hourly_limit", Integer),  # recipients accepted per rolling hour; NULL: no limit
)

# Keys of the platform's operators: they manage tenants and the partner registry over the API.
# Kept like tenant keys: the prefix to tell them apart, the SHA-256 of the whole key.
admin_keys = Table(
    "admin_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("label", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    # The first characters of the key, to tell keys apart in listings; never enough to use it.
    Column("prefix", String(16), nullable=False),
    # SHA-256 of the whole key: keys are 256 random bits, so a fast hash is safe here.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),  # written at most once a minute per key
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id"), nullable=False, index=True),
    Column("mail_from", String(320), nullable=False),  # envelope sender (RFC 5321 MAIL FROM)
    Column("from_header", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("message_id_header", String(255), nullable=False),
    Column("raw", LargeBinary, nullable=False),  # the RFC 5322 bytes as they go on the wire
    Column("size", Integer, nullable=False),
    Column("requested_from", Text),  # the sender the caller asked for
    Column("sender_note", Text),  # why the sender used differs from the one asked for
    Column("dkim_domain", String(255)),
    Column("dkim_selector", String(63)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_messages_tenant_created", "tenant_id", "created_at"),  # the hourly limit's count
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("message_id", ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("domain", String(255), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_owner", String(80)),
    Column("lease_expires_at", UTCDateTime),
    Column("source_ip", String(45)),  # kept across retries: greylisting keys on it
    Column("last_code", Integer),
    Column("last_reply", Text),
    Column("category", String(32)),  # of the last reply (replies/ vocabulary)
    Column("provider", String(32)),  # the receiving provider, when recognised
    Column("updated_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Index("ix_deliveries_due", "state", "next_attempt_at"),
    Index("ix_deliveries_message_id", "message_id"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("delivery_id", ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reply_code", Integer),
    Column("enhanced_code", String(16)),
    Column("reply_text", Text, nullable=False),
    Column("category", String(32)),
    Column("provider", String(32)),
    Column("rule", String(64)),  # the classification rule that decided
    Column("mx_host", String(255)),
    Column("mx_ip", String(45)),
    Column("source_ip", String(45)),
    Column("tls", Boolean, nullable=False, default=False),
    Column("connection_reused", Boolean, nullable=False, default=False),
    Column("transcript", Text, nullable=False),
    Index("ix_attempts_delivery_id", "delivery_id"),
)

domains = Table(
    "domains",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True),
    # A claim: several tenants may claim a name while none has verified it; the one whose
    # records appear in DNS wins (each claim's CNAME targets carry its own random token).
    Column("name", String(253), nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("verified_at", UTCDateTime),  # first time verified
    Column("checked_at", UTCDateTime),
    Column("records", JSON),  # the last check, record by record
    Column("claim_token", String(32)),  # in the claim's DKIM targets; NULL: a claim older than tokens
    UniqueConstraint("tenant_id", "name"),
    Index("ix_domains_name", "name"),
)

dkim_keys = Table(
    "dkim_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("domain_id", ForeignKey("domains.id", ondelete="CASCADE")),  # NULL: the platform's own
    Column("selector", String(63), nullable=False),
    Column("state", String(16), nullable=False),
    Column("private_key", Text, nullable=False),  # encrypted with SECRET_KEY (AES-GCM)
    Column("public_key", Text, nullable=False),  # base64 DER SubjectPublicKeyInfo, as in p=
    Column("created_at", UTCDateTime, nullable=False),
    Column("activated_at", UTCDateTime),
    Index("ix_dkim_keys_domain_id", "domain_id"),
)

domain_events = Table(
    "domain_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("domain_id", ForeignKey("domains.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(32), nullable=False),  # checked, state_changed, key_rotated
    Column("old_state", String(16)),
    Column("new_state", String(16)),
    Column("data", JSON, nullable=False),
    Column("dispatched", UTCDateTime),  # when webhooks/dispatch turned it into calls; NULL: not yet
    Index("ix_domain_events_domain_id", "domain_id"),
    Index("ix_domain_events_undispatched", "id", postgresql_where=text("dispatched IS NULL"),
          sqlite_where=text("dispatched IS NULL")),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("address", String(320), nullable=False),  # lower case
    Column("reason", String(16), nullable=False),  # hard_bounce, complaint, unsubscribed, manual
    Column("source_message_id", String(32)),
    Column("detail", Text),  # the reply or report that caused it
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),  # NULL: until removed by hand
    Column("removed_at", UTCDateTime),
    Column("removed_reason", Text),
    Column("dispatched", UTCDateTime),  # when webhooks/dispatch turned it into calls; NULL: not yet
    UniqueConstraint("tenant_id", "address"),
    Index("ix_suppressions_undispatched", "id", postgresql_where=text("dispatched IS NULL"),
          sqlite_where=text("dispatched IS NULL")),
)

# One copy per recipient (the default): each recipient's own bytes, with only its own address in
# To:, signed on their own. A message sent with a shared To/Cc has no rows here: every recipient
# gets messages.raw. Kept apart from deliveries so that claiming and recording rewrite no message.
recipient_copies = Table(
    "recipient_copies",
    metadata,
    Column("message_id", ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("recipient", String(320), primary_key=True),
    Column("raw", LargeBinary, nullable=False),
)

explanation_feedback = Table(
    "explanation_feedback",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("explanation", String(64), nullable=False),  # the text's key, e.g. blocklisted.t-online
    Column("lang", String(8), nullable=False),
    Column("helpful", Boolean, nullable=False),
    Column("message_id", String(32)),
    Column("comment", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_explanation_feedback_explanation", "explanation"),
)

events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("message_id", ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("delivery_id", BigInteger),
    Column("kind", String(32), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("data", JSON, nullable=False),
    # The outbox of webhooks: when webhooks/dispatch turned the event into calls; NULL: not yet.
    # A flag, not a position: an event committed after a later id was read is still found.
    Column("dispatched", UTCDateTime),
    Index("ix_events_message_id", "message_id"),
    Index("ix_events_undispatched", "id", postgresql_where=text("dispatched IS NULL"),
          sqlite_where=text("dispatched IS NULL")),
)

# Workflows (workflows/): a workflow per tenant and trigger, every edit a new version; the events
# that came in (with their idempotency key and the answer given); the messages each made; work
# waiting for its time (delays).

workflows = Table(
    "workflows",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("trigger", String(64), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("version", Integer, nullable=False),  # the current version
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_workflows_tenant_trigger", "tenant_id", "trigger"),
)

workflow_versions = Table(
    "workflow_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workflow_id", ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("definition", JSON, nullable=False),  # trigger, conditions, delay, actions — as validated
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("workflow_id", "version"),
)

workflow_events = Table(
    "workflow_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("type", String(64), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("payload", JSON, nullable=False),  # the event as posted (people, fields)
    Column("answer", JSON(none_as_null=True)),  # what the first post answered; NULL (SQL) while it is handled
    Column("created_at", UTCDateTime, nullable=False),
    # While answer is NULL: until when its handler holds it; a repeat after that takes it over.
    Column("lease_until", UTCDateTime),
    Column("dispatched", UTCDateTime),  # once answered: when webhooks/dispatch told the endpoints
    UniqueConstraint("tenant_id", "idempotency_key"),
    Index("ix_workflow_events_undispatched", "id", postgresql_where=text("dispatched IS NULL"),
          sqlite_where=text("dispatched IS NULL")),
)

workflow_messages = Table(
    "workflow_messages",
    metadata,
    Column("message_id", ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("workflow_id", ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("event_id", BigInteger),  # NULL for a test send without an event
    Column("action", Integer, nullable=False),  # index of the e-mail action in the version
    Column("role", String(32)),  # the recipient's role, NULL for a fixed address
    Column("lang", String(8), nullable=False),
    Column("message_class", String(16), nullable=False),  # transactional | bulk
    Column("test", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_workflow_messages_workflow", "workflow_id", "version"),
)

workflow_jobs = Table(
    "workflow_jobs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("workflow_id", ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("action", Integer, nullable=False),
    Column("recipient", Integer, nullable=False),  # index into the action's recipients
    Column("due_at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False),  # waiting | running | done | failed
    Column("claimed_by", String(80)),
    Column("lease_until", UTCDateTime),  # a running job whose lease has passed is taken by the next loop
    Column("outcome", JSON),
    Column("created_at", UTCDateTime, nullable=False),
    Column("dispatched", UTCDateTime),  # once failed for good: when webhooks/dispatch told the endpoints
    Index("ix_workflow_jobs_due", "state", "due_at"),
    Index("ix_workflow_jobs_undispatched", "id", postgresql_where=text("dispatched IS NULL AND state = 'failed'"),
          sqlite_where=text("dispatched IS NULL AND state = 'failed'")),
    Index("ux_workflow_jobs_unit", "event_id", "workflow_id", "action", "recipient", unique=True),
)

# One row per unit of workflow work that sends (an event's action for one recipient, a digest):
# the message id is chosen here before the mail is accepted, so a run repeated after a crash
# finds the message the first run made instead of making a second.
workflow_sends = Table(
    "workflow_sends",
    metadata,
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("unit", String(120), primary_key=True),
    Column("message_id", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

workflow_tenant_settings = Table(
    "workflow_tenant_settings",
    metadata,
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("fallback_language", String(8), nullable=False),
)

partners = Table(
    "partners",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("ips", JSON, nullable=False),
    Column("hosts", JSON, nullable=False),
    Column("spf_include", String(253)),
    Column("dkim_domain", String(253)),
    Column("dkim_selector", String(63)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("removed_at", UTCDateTime),  # kept, so the old settings never seed it again
)

# Digests: an action that collects a recipient's events over a window into one mail.
workflow_digests = Table(
    "workflow_digests",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("workflow_id", ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),  # of the event that opened it
    Column("action", Integer, nullable=False),
    Column("recipient", Integer, nullable=False),
    Column("address", String(320), nullable=False),
    # Set while the digest collects, NULL once it is sent: one open digest per action and address.
    Column("open_key", String(400), unique=True),
    Column("due_at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False),  # open | running | done
    Column("lease_until", UTCDateTime),  # while running; passed: the next loop sends it
    Column("message_id", String(32)),
    Column("outcome", JSON),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_workflow_digests_due", "state", "due_at"),
)

workflow_digest_events = Table(
    "workflow_digest_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("digest_id", ForeignKey("workflow_digests.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("digest_id", "event_id"),
)

# Idempotency-Key: one row per key a caller used on a POST, for 24 hours. The row names neither
# the caller nor the key: ``lookup`` is the SHA-256 of the credential's hash, method, path and key.
# The answer is encrypted under a key derived from the caller's own bearer token (api/idempotency).
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("lookup", String(64), primary_key=True),
    Column("fingerprint", String(64), nullable=False),  # HMAC of the request under the caller's key
    Column("state", String(16), nullable=False),  # running | done
    Column("locked_until", UTCDateTime),  # while running: a request that never ended frees it then
    Column("status", Integer),  # once done
    Column("content_type", String(200)),
    Column("answer", LargeBinary),  # nonce and AES-GCM ciphertext; NULL: too large to keep
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_idempotency_keys_created_at", "created_at"),
)

# Webhooks (webhooks/): a tenant's endpoints, one call per event and endpoint (the payload fixed
# when the event is dispatched, so every retry sends the same bytes), and every attempt of a call.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(32), primary_key=True),  # we_<hex>
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("description", Text),
    Column("events", JSON, nullable=False),  # the selection: event types, "message.*", "*"
    Column("enabled", Boolean, nullable=False),
    Column("secret", Text, nullable=False),  # sealed with SECRET_KEY (AES-GCM)
    Column("previous_secret", Text),  # sealed; still signs beside the new one until previous_until
    Column("previous_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

webhook_calls = Table(
    "webhook_calls",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("endpoint_id", ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", String(40), nullable=False),  # stable across retries: evt_m<n>, evt_d<n>, evt_s<n>_<t>, evt_w<n>, evt_j<n>
    Column("event_type", String(40), nullable=False),
    Column("subject", String(400), nullable=False),  # what the order is kept for: a message, domain, address
    Column("seq", BigInteger, nullable=False),  # the event's place in its log; calls of a subject go in this order
    Column("body", Text, nullable=False),  # the JSON sent, byte for byte the same on every attempt
    Column("state", String(16), nullable=False),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),  # retried until then, then dead (a replay renews it)
    Column("lease_owner", String(80)),
    Column("lease_until", UTCDateTime),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    UniqueConstraint("endpoint_id", "event_id"),
    Index("ix_webhook_calls_due", "state", "next_attempt_at"),
    Index("ix_webhook_calls_order", "endpoint_id", "subject", "seq"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("call_id", ForeignKey("webhook_calls.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("status", Integer),  # the HTTP status; NULL: no answer (refused, timed out, guard)
    Column("error", Text),
    Column("response_excerpt", Text),  # the first bytes of the answer, as text
)
