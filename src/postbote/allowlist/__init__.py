"""The IT admin's allowlist kit: who sends in the company's name, from where, signed as whom —
in the form each mail system takes (``postbote allowlist``, ``GET /v1/allowlist``)."""

from .formats import FORMATS, LANGUAGES, render
from .kit import Kit, ResolvedHost, Sender, build_kit

__all__ = ["FORMATS", "LANGUAGES", "Kit", "ResolvedHost", "Sender", "build_kit", "render"]
