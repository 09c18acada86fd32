"""Receivers' replies: what they said, and whether to try again. Pure; imports nothing of ours."""

from .classify import Verdict, classify, retry_after_seconds
from .reply import Reply

__all__ = ["Reply", "Verdict", "classify", "retry_after_seconds"]
