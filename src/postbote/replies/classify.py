"""The retry-or-stop seam: a reply in, a verdict out. Small on purpose for now — the code class,
the enhanced status code, and a "try again in N seconds" in the text. Full classification
(providers, categories, explanations) grows here and keeps this signature."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .reply import Reply

_RETRY_AFTER = re.compile(
    r"(?:try|retry|come back)\w*\s+(?:again\s+)?(?:in|after)\s+(\d+)\s*"
    r"(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)\b",
    re.IGNORECASE,
)
_UNIT = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True, slots=True)
class Verdict:
    temporary: bool
    retry_after: float | None = None  # seconds, when the reply names a wait


def classify(reply: Reply) -> Verdict:
    retry_after = retry_after_seconds(reply.text)
    if reply.enhanced_code and reply.enhanced_code[0] in "45":
        # RFC 3463: the enhanced class is the more specific statement when it is present.
        return Verdict(temporary=reply.enhanced_code[0] == "4", retry_after=retry_after)
    if reply.code is None:  # no answer at all: connection refused, timeout, DNS trouble
        return Verdict(temporary=True, retry_after=retry_after)
    return Verdict(temporary=400 <= reply.code < 500, retry_after=retry_after)


def retry_after_seconds(text: str) -> float | None:
    match = _RETRY_AFTER.search(text)
    if not match:
        return None
    number, unit = match.groups()
    return float(number) * _UNIT[unit[0].lower()]
