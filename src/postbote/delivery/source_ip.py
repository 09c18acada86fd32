"""Which local address a destination is sent from. Greylisting keys on (client IP, sender,
recipient), so a retry from another address would be greylisted anew: a delivery keeps the
address of its first attempt, and a new delivery to a domain starts from the same address as
every other delivery to that domain — a stable hash, the same in every worker process."""

from __future__ import annotations

import zlib


def pick_source_ip(domain: str, kept: str | None, configured: list[str]) -> str | None:
    if not configured:
        return None  # the kernel chooses
    if kept in configured:
        return kept
    return configured[zlib.crc32(domain.encode()) % len(configured)]
