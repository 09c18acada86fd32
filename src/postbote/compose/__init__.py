"""Building messages: addresses and RFC 5322 bytes."""

from .addresses import Mailbox, check_header_value, normalize_domain, parse_mailbox, refuse_line_breaks, unsafe_character
from .message import ComposedMessage, Draft, compose, new_message_id

__all__ = [
    "Mailbox",
    "parse_mailbox",
    "normalize_domain",
    "refuse_line_breaks",
    "check_header_value",
    "unsafe_character",
    "Draft",
    "ComposedMessage",
    "compose",
    "new_message_id",
]
