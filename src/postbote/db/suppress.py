"""Writing a suppression-list entry, for every layer that learns an address is dead: acceptance
(by hand), delivery (a permanent invalid-recipient reply) and the bounce receiver (a DSN or a
complaint). Storage only; the rules of when to suppress live with their callers."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from ..vocab import SuppressionReason
from .schema import suppressions, utcnow


def suppress_in(conn: Connection, tenant_id: int, address: str, reason: SuppressionReason, *,
                source_message_id: str | None = None, detail: str | None = None, lifetime: float | None = None) -> None:
    """Add (or renew) an entry inside the caller's transaction. One row per tenant and address."""
    now = utcnow()
    values = dict(tenant_id=tenant_id, address=address.lower(), reason=reason.value, source_message_id=source_message_id,
                  detail=(detail or "")[:2000] or None, created_at=now,
                  expires_at=now + timedelta(seconds=lifetime) if lifetime else None, removed_at=None, removed_reason=None,
                  dispatched=None)  # a renewed entry is news for webhooks again
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(suppressions).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["tenant_id", "address"],
        set_={k: statement.excluded[k] for k in values if k not in ("tenant_id", "address")},
    )
    conn.execute(statement)
