"""Traffic shaping, first part: which site receives a domain's mail. Domains whose MX hosts belong
to one provider are one destination for shaping (every Google Workspace domain is Gmail's
limits), found by matching the MX names against the rules in a TOML file; a domain no rule
matches is a site of its own, named by its sorted MX host set, with the default limits."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError

BUILTIN_RULES = Path(__file__).with_name("providers.toml")
_MAX_RULES_BYTES = 256 * 1024
_LIMITS = ("connections", "messages_per_connection", "messages_per_minute", "tls_required")


@dataclass(frozen=True)
class Limits:
    connections: int
    messages_per_connection: int
    messages_per_minute: int
    tls_required: bool


@dataclass(frozen=True)
class Site:
    """Where mail for a domain goes: a provider, or the MX host set itself."""

    name: str
    limits: Limits
    source: str  # why these limits: the rule's cited page, or "default"


@dataclass(frozen=True)
class Rule:
    name: str
    patterns: tuple[str, ...]
    limits: Limits
    source: str


@dataclass(frozen=True)
class Rules:
    default: Limits
    providers: tuple[Rule, ...]

    def site_of(self, mx_hosts) -> Site:
        hosts = sorted({h.rstrip(".").lower() for h in mx_hosts})
        for rule in self.providers:
            if any(fnmatchcase(h, p) for h in hosts for p in rule.patterns):
                return Site(rule.name, rule.limits, rule.source)
        return Site("mx:" + ",".join(hosts), self.default, "default")


def _limits(table: dict, base: dict, where: str) -> Limits:
    values = {**base, **{k: table[k] for k in _LIMITS if k in table}}
    missing = [k for k in _LIMITS if k not in values]
    if missing:
        raise ConfigError(f"shaping rules: {where} lacks {', '.join(missing)}",
                          hint="give every limit in [default]")
    for key in _LIMITS[:3]:
        if not isinstance(values[key], int) or isinstance(values[key], bool) or values[key] < 1:
            raise ConfigError(f"shaping rules: {where}.{key} must be a whole number of at least 1",
                              hint="write e.g. connections = 5")
    if not isinstance(values["tls_required"], bool):
        raise ConfigError(f"shaping rules: {where}.tls_required must be true or false",
                          hint="write tls_required = true")
    return Limits(**{k: values[k] for k in _LIMITS})


def parse_rules(text: str) -> Rules:
    if len(text.encode()) > _MAX_RULES_BYTES:
        raise ConfigError("shaping rules file is larger than 256 KB", hint="keep one rule per provider")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"shaping rules are not valid TOML: {exc}", hint="check the rules file") from None
    default_table = data.get("default", {})
    default = _limits(default_table, {}, "[default]")
    base = {k: getattr(default, k) for k in _LIMITS}
    providers = []
    for i, table in enumerate(data.get("provider", [])):
        name = table.get("name")
        patterns = table.get("mx")
        if not isinstance(name, str) or not name or not isinstance(patterns, list) or not patterns \
                or not all(isinstance(p, str) and p for p in patterns):
            raise ConfigError(f"shaping rules: provider #{i + 1} needs a name and a list of mx patterns",
                              hint='write name = "google" and mx = ["*.google.com"]')
        providers.append(Rule(name, tuple(p.lower() for p in patterns),
                              _limits(table, base, f"provider {name}"), str(table.get("source", ""))))
    return Rules(default, tuple(providers))


@lru_cache(maxsize=8)
def load_rules(path: str = "") -> Rules:
    """The rules of SHAPING_RULES (a file), or the ones shipped with Postbote when it is empty."""
    file = Path(path) if path else BUILTIN_RULES
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the shaping rules {file}: {exc.strerror}",
                          hint="set SHAPING_RULES to a readable TOML file, or leave it empty") from None
    return parse_rules(text)
