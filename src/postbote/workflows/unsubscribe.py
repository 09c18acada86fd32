"""One-click unsubscribe for bulk mail (RFC 8058), served by Postbote.

Each bulk copy carries ``List-Unsubscribe: <https://…/v1/unsubscribe/TOKEN>, <mailto:…>`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``, both covered by the DKIM signature
(RFC 8058 §4). The token names the tenant, the address and the workflow, and carries an
HMAC-SHA256 over them under a key derived from ``SECRET_KEY``: a forged or altered link changes
nothing. A POST suppresses the address for that tenant with reason ``unsubscribed``; bulk mail to
it is refused at entry from then on, transactional mail is not (a candidate who leaves a
newsletter still gets the interview invitation). A GET changes nothing — mail scanners follow
links (RFC 8058 §3.2) — and shows a page with the button."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

from sqlalchemy import Engine, select

from ..db.schema import suppressions, utcnow
from ..db.suppress import suppress_in
from ..errors import NotFoundError
from ..vocab import SuppressionReason

MAX_TOKEN = 600
_LABEL = b"postbote one-click unsubscribe v1"


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    tenant_id: int
    address: str
    workflow_id: int


def _key(secret_key: str) -> bytes:
    # A key of its own, so a token never doubles as any other MAC made from SECRET_KEY.
    return hmac.new(secret_key.encode(), _LABEL, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(secret_key: str, item: Unsubscribe) -> str:
    body = json.dumps([item.tenant_id, item.address.lower(), item.workflow_id], separators=(",", ":")).encode()
    mac = hmac.new(_key(secret_key), body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(mac)}"


def _invalid() -> NotFoundError:
    return NotFoundError("This unsubscribe link is not valid.", code="unsubscribe_link_invalid",
                         hint="Use the link from the message's List-Unsubscribe header as it came.")


def read_token(secret_key: str, token: str) -> Unsubscribe:
    """The unsubscribe a token stands for; ``unsubscribe_link_invalid`` when forged or altered."""
    if len(token) > MAX_TOKEN or token.count(".") != 1:
        raise _invalid()
    body_text, mac_text = token.split(".")
    try:
        body, mac = _unb64(body_text), _unb64(mac_text)
    except (ValueError, TypeError):
        raise _invalid() from None
    if not hmac.compare_digest(mac, hmac.new(_key(secret_key), body, hashlib.sha256).digest()):
        raise _invalid()
    tenant_id, address, workflow_id = json.loads(body)
    return Unsubscribe(int(tenant_id), str(address), int(workflow_id))


UNSUBSCRIBE_LOCAL_PART = "unsubscribe"


def headers(url: str, mailto: str, token: str) -> tuple[tuple[str, str], ...]:
    """``mailto`` carries the token in the subject it sets (RFC 6068), for the bounce receiver."""
    return (("List-Unsubscribe", f"<{url}>, <mailto:{mailto}?subject=unsubscribe%20{token}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))


def unsubscribe(engine: Engine, secret_key: str, token: str) -> Unsubscribe:
    """Suppress the token's address for its tenant, unless a stronger entry (a hard bounce, a
    complaint, a manual block) is there already — an unsubscribe never weakens one."""
    item = read_token(secret_key, token)
    now = utcnow()
    with engine.begin() as conn:
        existing = conn.execute(select(suppressions.c.reason).where(
            suppressions.c.tenant_id == item.tenant_id, suppressions.c.address == item.address,
            suppressions.c.removed_at.is_(None),
            (suppressions.c.expires_at.is_(None)) | (suppressions.c.expires_at > now))).scalar()
        if existing is None or existing == SuppressionReason.UNSUBSCRIBED.value:
            suppress_in(conn, item.tenant_id, item.address, SuppressionReason.UNSUBSCRIBED,
                        detail=f"one-click unsubscribe (RFC 8058) from bulk mail of workflow {item.workflow_id}")
    return item
