"""The suppression list: addresses a tenant's mail must not go to — after a hard bounce, a
complaint, an unsubscribe, or by hand. Entries from a full mailbox expire; the others stay until
someone removes them, with a reason. Removed entries are kept, so the history stays readable."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, or_, select, update

from ..db.schema import iso_utc, suppressions, utcnow
from ..db.suppress import suppress_in
from ..errors import InputError, NotFoundError
from ..vocab import SuppressionReason
from .normalize import canonical_address, canonical_or_none


@dataclass(frozen=True, slots=True)
class Suppression:
    address: str
    reason: str
    source_message_id: str | None
    detail: str | None
    created_at: datetime
    expires_at: datetime | None

    def to_dict(self) -> dict:
        return {"address": self.address, "reason": self.reason, "source_message_id": self.source_message_id,
                "detail": self.detail, "created_at": iso_utc(self.created_at), "expires_at": iso_utc(self.expires_at)}


def _active(now: datetime):
    return (suppressions.c.removed_at.is_(None)) & (
        or_(suppressions.c.expires_at.is_(None), suppressions.c.expires_at > now))


def suppress(engine: Engine, tenant_id: int, address: str, reason: str, *, detail: str | None = None) -> Suppression:
    try:
        chosen = SuppressionReason(reason)
    except ValueError:
        raise InputError(f"The reason {reason!r} does not exist.", code="reason_invalid",
                         hint="Use hard_bounce, complaint, unsubscribed or manual.") from None
    key = canonical_address(address)  # what is not an address is refused: it could never match
    with engine.begin() as conn:
        suppress_in(conn, tenant_id, key, chosen, detail=detail)
    return find(engine, tenant_id, key)  # type: ignore[return-value]


def find(engine: Engine, tenant_id: int, address: str) -> Suppression | None:
    key = canonical_or_none(address)
    return find_many(engine, tenant_id, [address]).get(key) if key else None


def find_many(engine: Engine, tenant_id: int, addresses: list[str]) -> dict[str, Suppression]:
    """The active entries among ``addresses``, keyed by canonical_address."""
    wanted = {key for key in map(canonical_or_none, addresses) if key}
    if not wanted:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(select(suppressions).where(
            suppressions.c.tenant_id == tenant_id, suppressions.c.address.in_(wanted), _active(utcnow()))).all()
    return {r.address: _row(r) for r in rows}


def _row(r) -> Suppression:
    return Suppression(r.address, r.reason, r.source_message_id, r.detail, r.created_at, r.expires_at)


def remove(engine: Engine, tenant_id: int, address: str, reason: str) -> str:
    """Lift the entry; returns the address as stored."""
    if not reason.strip():
        raise InputError("Say why the address may be mailed again.", code="reason_missing",
                         hint="Give a reason, e.g. 'the candidate confirmed the address by phone'.")
    # The canonical form, and the text as typed: entries stored before addresses were normalised
    # (any string, '/' and all) can be removed too.
    keys = {address.strip().lower()[:2000]} | ({canonical_or_none(address)} - {None})
    with engine.begin() as conn:
        changed = conn.execute(update(suppressions).where(
            suppressions.c.tenant_id == tenant_id, suppressions.c.address.in_(keys), _active(utcnow())
        ).values(removed_at=utcnow(), removed_reason=reason.strip()[:2000])).rowcount
    if not changed:
        raise NotFoundError(f"{address[:200]} is not suppressed.", code="suppression_not_found",
                            hint="List the suppressed addresses with 'postbote suppression list'.")
    return canonical_or_none(address) or address.strip().lower()


def search(engine: Engine, tenant_id: int, text: str = "", *, limit: int = 1000) -> list[Suppression]:
    query = (select(suppressions).where(suppressions.c.tenant_id == tenant_id, _active(utcnow()))
             .order_by(suppressions.c.created_at.desc()).limit(limit))
    if text:
        query = query.where(suppressions.c.address.contains(text.lower(), autoescape=True))
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(query)]


def search_page(engine: Engine, tenant_id: int, text: str = "", *, limit: int,
                before: int | None = None) -> list[tuple[int, Suppression]]:
    """Up to ``limit`` entries, the newest entered (highest id) first, entered before the entry
    with id ``before``; each with its id, the cursor of the next page."""
    query = (select(suppressions).where(suppressions.c.tenant_id == tenant_id, _active(utcnow()))
             .order_by(suppressions.c.id.desc()).limit(limit))
    if text:
        query = query.where(suppressions.c.address.contains(text.lower(), autoescape=True))
    if before is not None:
        query = query.where(suppressions.c.id < before)
    with engine.connect() as conn:
        return [(r.id, _row(r)) for r in conn.execute(query)]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "|", "%")


def spreadsheet_safe(value: str) -> str:
    """A cell no spreadsheet runs as a formula (CSV injection): a leading =, +, -, @, tab or line
    break gets a ' in front, which spreadsheets show as text and do not evaluate."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def export_csv(entries: list[Suppression]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["address", "reason", "created_at", "expires_at", "source_message_id", "detail"])
    for e in entries:
        row = [e.address, e.reason, iso_utc(e.created_at), iso_utc(e.expires_at) or "", e.source_message_id or "",
               e.detail or ""]
        writer.writerow([spreadsheet_safe(v) for v in row])
    return out.getvalue()
