"""A receiving server's reply, as read off the wire or synthesised for a failure that never got
a reply (connection refused, timeout, DNS). Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 3463 §2: class.subject.detail, at the start of the text (RFC 2034).
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)")


@dataclass(frozen=True, slots=True)
class Reply:
    code: int | None  # None when no server answered (the text says what happened instead)
    text: str  # multi-line replies joined with newlines, codes stripped
    enhanced_code: str | None = None

    @classmethod
    def from_smtp(cls, code: int, text: str) -> "Reply":
        match = _ENHANCED.match(text)
        return cls(code=code, text=text, enhanced_code=".".join(match.groups()) if match else None)

    @classmethod
    def local(cls, text: str) -> "Reply":
        """A failure Postbote saw itself: no code, the text says what happened."""
        return cls(code=None, text=text)

    def __str__(self) -> str:
        return f"{self.code} {self.text}" if self.code is not None else self.text
