"""Classification: a reply in (and, when known, the MX host that gave it), a category and a
retry decision out. The rules are data (``rules/*.toml``); this module only applies them. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..vocab import ReplyCategory
from .reply import Reply
from .rules import load_rules

_RETRY_AFTER = re.compile(
    r"(?:try|retry|come back)\w*\s+(?:again\s+)?(?:in|after)\s+(\d+)\s*"
    r"(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)\b",
    re.IGNORECASE,
)
_UNIT = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True, slots=True)
class Classification:
    category: ReplyCategory
    temporary: bool  # whether Postbote tries again
    provider: str | None  # id from rules/providers.toml
    retry_after: float | None  # seconds, when the reply names a wait
    rule: str  # id of the rule that decided
    min_wait: float = 0.0  # retries no sooner than this
    give_up_after: float | None = None  # stop retrying once the message is this old
    suppress: bool = False  # the address should not be mailed again


def classify(reply: Reply, mx_host: str | None = None) -> Classification:
    rules = load_rules()
    flat = reply.flat()
    provider = rules.provider_of(mx_host, flat)
    rule = rules.first_match(reply, flat, provider.id if provider else None)
    policy = rules.policies[rule.category]
    retry = rule.retry or policy.retry
    if retry == "code":
        temporary = _temporary_by_code(reply)
    else:
        temporary = retry == "yes"
    return Classification(
        category=rule.category,
        temporary=temporary,
        provider=provider.id if provider else None,
        retry_after=retry_after_seconds(flat),
        rule=rule.id,
        min_wait=policy.min_wait if temporary else 0.0,
        give_up_after=policy.give_up_after,
        suppress=policy.suppress and not temporary,
    )


@lru_cache(maxsize=4096)
def provider_of_mx(mx_host: str | None) -> str | None:
    """The provider behind an MX host, without a reply to read (a 250 says nothing more)."""
    provider = load_rules().provider_of(mx_host, "") if mx_host else None
    return provider.id if provider else None


def _temporary_by_code(reply: Reply) -> bool:
    if reply.enhanced_code and reply.enhanced_code[0] in "45":
        # RFC 3463: the enhanced class is the more specific statement when it is present.
        return reply.enhanced_code[0] == "4"
    if reply.code is None:  # no answer at all: connection refused, timeout, DNS trouble
        return True
    return 400 <= reply.code < 500


def retry_after_seconds(text: str) -> float | None:
    match = _RETRY_AFTER.search(text)
    if not match:
        return None
    number, unit = match.groups()
    return float(number) * _UNIT[unit[0].lower()]
