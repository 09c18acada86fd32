"""Storage: the tables, the engine, and the migrations."""

from .engine import open_engine
from .migrate import require_current, upgrade
from .schema import (
    api_keys,
    attempts,
    deliveries,
    dkim_keys,
    domain_events,
    domains,
    events,
    explanation_feedback,
    messages,
    suppressions,
    metadata,
    tenants,
    utcnow,
)

__all__ = [
    "open_engine",
    "upgrade",
    "require_current",
    "metadata",
    "tenants",
    "api_keys",
    "messages",
    "deliveries",
    "attempts",
    "events",
    "suppressions",
    "domains",
    "dkim_keys",
    "domain_events",
    "explanation_feedback",
    "utcnow",
]
