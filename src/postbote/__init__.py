"""Postbote: notification e-mail that arrives, and an explanation when it does not."""

__version__ = "0.1.0"
