"""RFC 3464 delivery status fields, read from text rather than from a well-formed part.

MTAs put the per-recipient blocks in ``message/delivery-status``, in ``text/plain``, without the
blank lines between blocks, or with a ``Final-Recipient`` that holds no address. So the fields are
read line by line (folded lines joined, RFC 5322 §2.2.3) and a new recipient starts wherever a
recipient field repeats (RFC 3464 §2.3: Original-Recipient, then Final-Recipient, per recipient).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .text import addresses, lines, squash, status_in

_RECIPIENT_FIELDS = ("original-recipient", "final-recipient", "x-actual-recipient")
_FIELDS = frozenset((*_RECIPIENT_FIELDS, "action", "status", "diagnostic-code", "remote-mta", "x-supplementary-info",
                     "x-display-name"))
# "550 5.7.1", "550-'5.7.1", "421-4.7.0": an enhanced code right after a reply code (RFC 2034 §4).
_SPOKEN = re.compile(r"(?<!\d)[245]\d\d[ -]'?([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
ACTIONS = ("failed", "delayed", "delivered", "relayed", "expanded")  # RFC 3464 §2.3.3


@dataclass(slots=True)
class Block:
    fields: dict[str, str] = field(default_factory=dict)
    early: frozenset[str] = frozenset()  # fields written before the recipient field that began the block

    def address(self) -> str | None:
        """Whom the block is about: the address as sent (Original-Recipient, RFC 3461 ORCPT), else
        the final one, else the one a forwarding MTA reports as actual."""
        for name in _RECIPIENT_FIELDS:
            found = addresses(self.fields.get(name, "").split(";", 1)[-1], limit=1)
            if found:
                return found[0]
        return None


def has_fields(text: str) -> bool:
    lowered = text[:200_000].lower()
    return "final-recipient:" in lowered or ("original-recipient:" in lowered and "action:" in lowered)


def blocks(text: str) -> list[Block]:
    """The per-recipient blocks of a delivery-status text, in order.

    RFC 3464 §2.1 separates the groups of fields by blank lines and §2.3 starts a recipient's group
    with its recipient fields, but some MTAs write Status or Diagnostic-Code before
    Final-Recipient. So the fields of a group that come before its recipient field wait in
    ``pending`` and join the block that field starts; when no recipient field follows, they
    belong to the block before."""
    result: list[Block] = []
    current: Block | None = None
    pending: dict[str, str] = {}
    target: dict[str, str] | None = None  # where the last field went, for its folded lines
    last: str | None = None
    fresh = True  # at the start of a group of fields (after a blank line)
    for line in lines(text):
        if line.startswith(">"):  # a report quoted in a forwarded message
            line = line.lstrip(">")[1:] if line.lstrip(">").startswith(" ") else line.lstrip(">")
        if not line.strip():
            _settle(current, pending)
            fresh, last = True, None
            continue
        if line[:1] in (" ", "\t") and last and target is not None:
            if len(target[last]) < 4000:
                target[last] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        name = name.strip().lower()
        last = None
        if not colon or name not in _FIELDS:
            continue
        if name in _RECIPIENT_FIELDS and (current is None or pending or _starts_new(current, name)):
            current = Block(pending, frozenset(pending))
            result.append(current)
            pending, fresh = {}, False
        target = pending if current is None or (fresh and name not in _RECIPIENT_FIELDS) else current.fields
        if name not in target:
            target[name] = value.strip()
            last = name
    _settle(current, pending)
    return [b for b in result if b.address() or b.fields.get("action") or b.fields.get("status")]


def _settle(current: Block | None, pending: dict[str, str]) -> None:
    """Fields of a group that no recipient field followed belong to the block before."""
    if current is not None:
        for name, value in pending.items():
            current.fields.setdefault(name, value)
    pending.clear()


def _starts_new(current: Block, name: str) -> bool:
    if name in current.fields:
        return True
    # Postfix writes Final- before Original-Recipient, RFC 3464 the other way round; either way the
    # block's own fields (Action, Status) come after both, and X-Actual-Recipient may follow them.
    later = [f for f in ("action", "status") if f in current.fields and f not in current.early]
    return name != "x-actual-recipient" and bool(later)


def action_of(block: Block, status: str | None) -> str:
    action = block.fields.get("action", "").strip().lower().split(" ", 1)[0].split("(", 1)[0]
    if action in ACTIONS:
        return action
    if status:  # a missing or odd Action: the status class says it (RFC 3463 §3.1)
        return {"2": "delivered", "4": "delayed"}.get(status[0], "failed")
    return "failed"


def status_of(block: Block) -> str | None:
    """The Status field; where it says only X.0.0, the more specific code the diagnostic gives
    for the same class (RFC 3463 §3.1: X.0.0 means "other or undefined")."""
    status = status_in(block.fields.get("status", ""))
    diagnostic = diagnostic_of(block)
    spoken = _SPOKEN.search(diagnostic)
    if spoken:  # the receiving server's own code, next to its reply code, says most
        return ".".join(spoken.groups())
    detail = status_in(diagnostic)
    if status is None:
        return detail
    if status.endswith(".0.0") and detail and detail[0] == status[0]:
        return detail
    return status


def diagnostic_of(block: Block) -> str:
    value = block.fields.get("diagnostic-code", "")
    kind, semicolon, rest = value.partition(";")
    if semicolon and len(kind) < 20 and " " not in kind.strip():
        value = rest  # "smtp; 550 ...", "X-Postfix; ...", RFC 3464 §2.3.6
    return squash(value)
