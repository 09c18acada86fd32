"""Receivers' replies: what they said, what it means, whether to try again, and what to tell an
admin. Pure; imports nothing but vocab and durations."""

from .classify import Classification, classify, provider_of_mx, retry_after_seconds
from .explain import LANGUAGES, Explanation, ExplanationContext, explain, explanation_ids
from .reply import Reply
from .rules import RuleError, load_rules

__all__ = [
    "LANGUAGES",
    "Explanation",
    "ExplanationContext",
    "explain",
    "explanation_ids","Reply", "Classification", "classify",
    "provider_of_mx", "retry_after_seconds", "load_rules", "RuleError"]
