"""Counting outcomes for the admin's overview: how many deliveries to each destination are in
which state, and why (the category of the last reply)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, case, func, select

from ..db.schema import deliveries, explanation_feedback, messages


@dataclass(frozen=True, slots=True)
class OutcomeCount:
    provider: str | None
    domain: str
    state: str
    category: str | None
    count: int


@dataclass(frozen=True, slots=True)
class FeedbackCount:
    explanation: str
    lang: str
    helpful: int
    not_helpful: int


def outcome_counts(engine: Engine, since: datetime, tenant_id: int | None = None) -> list[OutcomeCount]:
    query = (
        select(deliveries.c.provider, deliveries.c.domain, deliveries.c.state, deliveries.c.category, func.count())
        .where(deliveries.c.updated_at >= since)
        .group_by(deliveries.c.provider, deliveries.c.domain, deliveries.c.state, deliveries.c.category)
    )
    if tenant_id is not None:
        query = query.join(messages, messages.c.id == deliveries.c.message_id).where(messages.c.tenant_id == tenant_id)
    with engine.connect() as conn:
        return [OutcomeCount(*row) for row in conn.execute(query)]


def feedback_counts(engine: Engine, since: datetime, tenant_id: int | None = None) -> list[FeedbackCount]:
    f = explanation_feedback.c
    helpful = func.sum(case((f.helpful.is_(True), 1), else_=0))
    query = (
        select(f.explanation, f.lang, helpful, func.count())
        .where(f.created_at >= since)
        .group_by(f.explanation, f.lang)
        .order_by(f.explanation, f.lang)
    )
    if tenant_id is not None:
        query = query.where(f.tenant_id == tenant_id)
    with engine.connect() as conn:
        return [FeedbackCount(e, lang, int(h or 0), int(n) - int(h or 0)) for e, lang, h, n in conn.execute(query)]
