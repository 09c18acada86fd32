"""The transcript of an SMTP session: what Postbote said and what the server answered, the way
an admin reads it when asking why a message did not arrive."""

from __future__ import annotations


class Transcript:
    __slots__ = ("lines",)

    def __init__(self, lines: list[str] | None = None):
        self.lines: list[str] = lines if lines is not None else []

    def note(self, text: str) -> None:
        self.lines.append(f"* {text}")

    def sent(self, command: str) -> None:
        self.lines.append(f"> {command}")

    def received(self, code: int, text: str) -> None:
        first, *rest = text.split("\n") if text else [""]
        self.lines.append(f"< {code} {first}".rstrip())
        self.lines.extend(f"< {code} {line}".rstrip() for line in rest)

    def extended(self, other: "Transcript") -> "Transcript":
        return Transcript(self.lines + other.lines)

    def text(self) -> str:
        return "\n".join(self.lines)
