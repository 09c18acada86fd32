"""Recipients: checking addresses before they enter the queue, typo suggestions, suppression."""

from .normalize import canonical_address, canonical_or_none
from .suggest import MAILBOX_PROVIDERS, suggest
from .suppression import Suppression, find_many, suppress, suppress_in
from .validate import REASONS, AddressCheck, check_address, check_addresses, check_syntax

__all__ = [
    "canonical_address",
    "canonical_or_none",
    "suggest",
    "MAILBOX_PROVIDERS",
    "Suppression",
    "find_many",
    "suppress",
    "suppress_in",
    "REASONS",
    "AddressCheck",
    "check_address",
    "check_addresses",
    "check_syntax",
]
