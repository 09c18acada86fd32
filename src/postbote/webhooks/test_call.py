"""``webhook.test``: a call made on request, to see that a receiver takes and verifies calls
before real events depend on it. It goes the way of every call (signed, retried, logged), about
a subject of its own, so it never waits behind or holds back another call."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

from sqlalchemy import Engine, insert

from ..db.schema import iso_utc, utcnow, webhook_calls
from ..settings import Settings
from .endpoints import disabled, get
from .types import WebhookEvent


def send_test(engine: Engine, settings: Settings, tenant_id: int, endpoint_id: str) -> dict:
    if not get(engine, tenant_id, endpoint_id).enabled:  # 404 for an endpoint that is not the tenant's
        raise disabled(endpoint_id)
    now = utcnow()
    event_id = "evt_t" + secrets.token_hex(8)
    body = json.dumps({"id": event_id, "type": WebhookEvent.WEBHOOK_TEST.value, "timestamp": iso_utc(now),
                       "data": {"endpoint_id": endpoint_id, "note": "A test call from Postbote; nothing happened."}},
                      separators=(",", ":"), sort_keys=True)
    with engine.begin() as conn:
        call_id = conn.execute(insert(webhook_calls).values(
            endpoint_id=endpoint_id, event_id=event_id, event_type=WebhookEvent.WEBHOOK_TEST.value,
            subject=f"test:{event_id}", seq=0, body=body, state="pending", attempts=0, next_attempt_at=now,
            expires_at=now + timedelta(seconds=settings.webhook_max_age_seconds), created_at=now)).inserted_primary_key[0]
    return {"call_id": call_id, "event_id": event_id}
