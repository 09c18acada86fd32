"""The classification rules: data in ``rules/*.toml``, read once, checked on load.

Files are read in name order (``05-local``, ``10-providers``, ``20-text``, ``30-enhanced``,
``40-classes``) and rules in file order; the first rule that matches decides. A rule matches
when every condition it names holds: ``provider`` (one id or a list), ``local`` (no server
answered), ``code`` (a list of reply codes), ``class`` (4 or 5), ``enhanced`` (a regular
expression over the whole enhanced status code) and ``text`` (a regular expression searched in
the reply text, case-insensitive)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Pattern

from ..durations import parse_duration
from ..vocab import ReplyCategory
from .reply import Reply

_RETRY = ("yes", "no", "code")


class RuleError(ValueError):
    """A rules file is malformed; raised at load time, naming the file and the rule."""


@dataclass(frozen=True, slots=True)
class CategoryPolicy:
    retry: str
    min_wait: float = 0.0
    give_up_after: float | None = None
    suppress: bool = False


@dataclass(frozen=True, slots=True)
class Provider:
    id: str
    name: str
    mx: tuple[Pattern, ...]
    text: tuple[Pattern, ...]
    postmaster: str


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    category: ReplyCategory
    source: str
    file: str
    providers: frozenset[str] | None = None
    local: bool | None = None
    codes: frozenset[int] | None = None
    klass: int | None = None
    enhanced: Pattern | None = None
    text: Pattern | None = None
    retry: str | None = None

    def matches(self, reply: Reply, flat: str, provider: str | None) -> bool:
        if self.providers is not None and provider not in self.providers:
            return False
        if self.local is not None and self.local != (reply.code is None):
            return False
        if self.codes is not None and reply.code not in self.codes:
            return False
        if self.klass is not None and (reply.code is None or reply.code // 100 != self.klass):
            return False
        if self.enhanced is not None and not (reply.enhanced_code and self.enhanced.fullmatch(reply.enhanced_code)):
            return False
        if self.text is not None and not self.text.search(flat):
            return False
        return True


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    providers: tuple[Provider, ...]
    policies: dict[ReplyCategory, CategoryPolicy]

    def provider_of(self, mx_host: str | None, flat: str) -> Provider | None:
        if mx_host:
            host = mx_host.lower().rstrip(".")
            for provider in self.providers:
                if any(p.search(host) for p in provider.mx):
                    return provider
        for provider in self.providers:
            if any(p.search(flat) for p in provider.text):
                return provider
        return None

    def first_match(self, reply: Reply, flat: str, provider: str | None) -> Rule:
        for rule in self.rules:
            if rule.matches(reply, flat, provider):
                return rule
        raise RuleError("no rule matched; the last rule must match everything")

    def provider(self, provider_id: str) -> Provider | None:
        return next((p for p in self.providers if p.id == provider_id), None)


def _compile(pattern: str, where: str) -> Pattern:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise RuleError(f"{where}: bad regular expression {pattern!r}: {exc}") from None


def _rule(entry: dict, file: str, provider_ids: set[str]) -> Rule:
    where = f"{file} rule {entry.get('id', '?')!r}"
    unknown = set(entry) - {"id", "category", "source", "provider", "local", "code", "class", "enhanced", "text", "retry"}
    if unknown:
        raise RuleError(f"{where}: unknown keys {sorted(unknown)}")
    try:
        category = ReplyCategory(entry["category"])
    except (KeyError, ValueError):
        raise RuleError(f"{where}: category must be one of {[c.value for c in ReplyCategory]}") from None
    if not entry.get("id") or not entry.get("source"):
        raise RuleError(f"{where}: every rule needs an id and a source")
    providers = entry.get("provider")
    if providers is not None:
        providers = frozenset([providers] if isinstance(providers, str) else providers)
        if not providers <= provider_ids:
            raise RuleError(f"{where}: unknown provider {sorted(providers - provider_ids)}")
    retry = entry.get("retry")
    if retry is not None and retry not in _RETRY:
        raise RuleError(f"{where}: retry must be one of {_RETRY}")
    return Rule(
        id=entry["id"],
        category=category,
        source=entry["source"],
        file=file,
        providers=providers,
        local=entry.get("local"),
        codes=frozenset(entry["code"]) if "code" in entry else None,
        klass=entry.get("class"),
        enhanced=_compile(entry["enhanced"], where) if "enhanced" in entry else None,
        text=_compile(entry["text"], where) if "text" in entry else None,
        retry=retry,
    )


@cache
def load_rules() -> RuleSet:
    folder = resources.files(__package__) / "rules"
    with (folder / "providers.toml").open("rb") as f:
        providers = tuple(
            Provider(p["id"], p["name"], tuple(_compile(x, p["id"]) for x in p.get("mx", [])),
                     tuple(_compile(x, p["id"]) for x in p.get("text", [])), p.get("postmaster", ""))
            for p in tomllib.load(f)["provider"]
        )
    with (folder / "categories.toml").open("rb") as f:
        raw_policies = tomllib.load(f)
    policies = {}
    for category in ReplyCategory:
        entry = raw_policies.get(category.value)
        if entry is None or entry.get("retry") not in _RETRY:
            raise RuleError(f"categories.toml: {category.value} needs retry = yes, no or code")
        policies[category] = CategoryPolicy(
            retry=entry["retry"],
            min_wait=parse_duration(entry.get("min_wait", 0)),
            give_up_after=parse_duration(entry["give_up_after"]) if "give_up_after" in entry else None,
            suppress=bool(entry.get("suppress", False)),
        )
    provider_ids = {p.id for p in providers}
    rules: list[Rule] = []
    files = sorted(f.name for f in folder.iterdir() if f.name[:2].isdigit() and f.name.endswith(".toml"))
    for name in files:
        with (folder / name).open("rb") as f:
            rules.extend(_rule(entry, name, provider_ids) for entry in tomllib.load(f).get("rule", []))
    ids = [r.id for r in rules]
    if len(ids) != len(set(ids)):
        raise RuleError(f"duplicate rule ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    last = rules[-1]
    if any(getattr(last, c) is not None for c in ("providers", "local", "codes", "klass", "enhanced", "text")):
        raise RuleError(f"the last rule ({last.id}) must match every reply")
    return RuleSet(tuple(rules), providers, policies)
