"""Recipients: checking addresses before they enter the queue."""

from .suggest import MAILBOX_PROVIDERS, suggest

__all__ = ["suggest", "MAILBOX_PROVIDERS"]
