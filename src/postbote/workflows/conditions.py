"""Conditions on an event's fields: structured data, never code.

A condition is ``{"field": "fields.stage", "op": "eq", "value": "interview"}``; ``{"all": [...]}``
and ``{"any": [...]}`` combine them, ``{"not": {...}}`` negates one; a list means ``all``. Fields
are dotted paths into the event (``type``, ``fields.…``, ``people.<role>.…``). Nothing is
evaluated as Python: each operator is a function chosen from a fixed table, so a condition can
only compare values. Conditions are checked when a workflow is saved (``condition_invalid``,
with the path to the part at fault)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import InputError

MAX_DEPTH = 8
MAX_PARTS = 100
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z0-9_-]{1,64}){0,7}$")
_MISSING = object()


class ConditionError(InputError):
    code = "condition_invalid"
    hint = 'Write conditions as {"field": "fields.stage", "op": "eq", "value": "interview"}, combined with all/any/not.'

    def __init__(self, message: str, *, where: str):
        super().__init__(f"{where}: {message}")
        self.details = [{"where": where, "reason": message}]


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def check(left: Any, right: Any) -> bool:
        # Numbers with numbers, text with text (ISO dates compare as text); anything else is false.
        if isinstance(left, bool) or isinstance(right, bool):
            return False
        if isinstance(left, (int, float)) and isinstance(right, (int, float)):
            return compare(left, right)
        if isinstance(left, str) and isinstance(right, str):
            return compare(left, right)
        return False

    return check


def _contains(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return right.lower() in left.lower()
    return isinstance(left, list) and right in left


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "in": lambda a, b: a in b,
    "not_in": lambda a, b: a not in b,
    "gt": _ordered(lambda a, b: a > b),
    "gte": _ordered(lambda a, b: a >= b),
    "lt": _ordered(lambda a, b: a < b),
    "lte": _ordered(lambda a, b: a <= b),
    "contains": _contains,
    "exists": lambda a, b: a is not _MISSING and a is not None,
    "missing": lambda a, b: a is _MISSING or a is None,
}
_NO_VALUE = {"exists", "missing"}
_LIST_VALUE = {"in", "not_in"}


@dataclass(frozen=True, slots=True)
class Condition:
    """A validated condition tree (the JSON it came from, kept as it was)."""

    tree: Any

    def holds(self, event: dict[str, Any]) -> bool:
        return _holds(self.tree, event)


def parse_conditions(tree: Any) -> Condition:
    """Check the shape; raises ``ConditionError`` naming the part at fault."""
    count = [0]
    _check(tree if tree is not None else [], "conditions", 0, count)
    return Condition(tree if tree is not None else [])


def _check(node: Any, where: str, depth: int, count: list[int]) -> None:
    count[0] += 1
    if depth > MAX_DEPTH:
        raise ConditionError(f"nested deeper than {MAX_DEPTH} levels", where=where)
    if count[0] > MAX_PARTS:
        raise ConditionError(f"more than {MAX_PARTS} parts", where=where)
    if isinstance(node, list):
        for i, part in enumerate(node):
            _check(part, f"{where}[{i}]", depth + 1, count)
        return
    if not isinstance(node, dict):
        raise ConditionError("each condition is an object", where=where)
    for combinator in ("all", "any"):
        if combinator in node:
            if set(node) != {combinator} or not isinstance(node[combinator], list):
                raise ConditionError(f"'{combinator}' takes a list and nothing beside it", where=where)
            _check(node[combinator], f"{where}.{combinator}", depth + 1, count)
            return
    if "not" in node:
        if set(node) != {"not"}:
            raise ConditionError("'not' takes one condition and nothing beside it", where=where)
        _check(node["not"], f"{where}.not", depth + 1, count)
        return
    unknown = set(node) - {"field", "op", "value"}
    if unknown:
        raise ConditionError(f"unknown key {sorted(unknown)[0]!r}", where=where)
    field, op = node.get("field"), node.get("op", "eq")
    if not isinstance(field, str) or not _PATH.match(field):
        raise ConditionError("'field' must be a dotted path such as fields.stage", where=where)
    if op not in _OPS:
        raise ConditionError(f"unknown operator {op!r}; use one of {', '.join(_OPS)}", where=where)
    if op in _NO_VALUE:
        if "value" in node:
            raise ConditionError(f"'{op}' takes no value", where=where)
    elif "value" not in node:
        raise ConditionError(f"'{op}' needs a value", where=where)
    elif op in _LIST_VALUE and not isinstance(node["value"], list):
        raise ConditionError(f"'{op}' needs a list as its value", where=where)
    elif isinstance(node["value"], (dict,)) or (op not in _LIST_VALUE and isinstance(node["value"], list)):
        raise ConditionError("the value must be a string, number, boolean or null", where=where)


def _lookup(event: dict[str, Any], path: str) -> Any:
    value: Any = event
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _holds(node: Any, event: dict[str, Any]) -> bool:
    if isinstance(node, list):
        return all(_holds(part, event) for part in node)
    if "all" in node:
        return all(_holds(part, event) for part in node["all"])
    if "any" in node:
        return any(_holds(part, event) for part in node["any"])
    if "not" in node:
        return not _holds(node["not"], event)
    op = node.get("op", "eq")
    value = _lookup(event, node["field"])
    if value is _MISSING and op not in _NO_VALUE and op != "ne" and op != "not_in":
        return False
    try:
        return bool(_OPS[op](value, node.get("value")))
    except TypeError:
        return False
