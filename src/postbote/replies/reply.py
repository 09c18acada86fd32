"""A receiving server's reply, as read off the wire, pasted from a log or a bounce, or
synthesised for a failure that never got a reply (connection refused, timeout, DNS). Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 3463 §2: class.subject.detail, at the start of the text (RFC 2034).
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?=[\s:;,]|$)")
# One line of a reply: "550-5.7.1 text" (continued) or "550 5.7.1 text" (last); RFC 5321 §4.2.1.
_LINE = re.compile(r"^\s*([2-5]\d\d)(?:[ -]|$)(.*)$")
# Where a reply starts inside a log or bounce line: after "said:", "smtp;", "talk to me:" and the
# like — the first code after a colon or semicolon.
_EMBEDDED = re.compile(r"[:;]\s*(?=[2-5]\d\d[ -])")


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
    def local(cls, text: str, enhanced_code: str | None = None) -> "Reply":
        """A failure Postbote saw itself: no code, the text says what happened."""
        return cls(code=None, text=text, enhanced_code=enhanced_code)

    @classmethod
    def parse(cls, raw: str) -> "Reply":
        """A reply as people paste it: ``550 5.1.1 <a@b>: …``, a multi-line ``550-…`` block (in
        lines or run together), or a log line such as ``host mx.example[1.2.3.4] said: 550 …``."""
        raw = raw.strip()
        if not _LINE.match(raw):
            found = _EMBEDDED.search(raw)
            if found:
                raw = raw[found.end():]
        # Multi-line replies pasted on one line: "550-5.7.26 a 550-5.7.26 b 550 5.7.26 c".
        pieces = re.split(r"(?:\r?\n|\s(?=[2-5]\d\d-)|\s(?=[2-5]\d\d\s[2-5]\.\d{1,3}\.\d{1,3}\s))", raw)
        code, texts, enhanced = None, [], None
        for piece in pieces:
            match = _LINE.match(piece)
            if not match:
                if piece.strip():
                    texts.append(piece.strip())
                continue
            code = code or int(match.group(1))
            body = match.group(2).strip()
            found = _ENHANCED.match(body)
            if found:
                enhanced = enhanced or ".".join(found.groups())
                if texts:  # a repeated enhanced code on continuation lines adds nothing
                    body = body[found.end():].strip()
            if body:
                texts.append(body)
        if code is None:
            return cls.local(raw)
        return cls(code=code, text="\n".join(texts), enhanced_code=enhanced)

    def flat(self) -> str:
        """The text on one line, for matching and for tables."""
        return " ".join(self.text.split())

    def __str__(self) -> str:
        return f"{self.code} {self.flat()}" if self.code is not None else self.flat()
