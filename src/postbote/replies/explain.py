"""Explanations: what a classified reply means and what to do, in German, English or Spanish.

Texts live in ``explanations/{lang}.toml``, one table per category and, where a provider needs
its own words, per ``category.provider``. The key of the table used is the explanation's id:
feedback on a text ("did this help?") is counted per id and language. Pure."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from string import Formatter

from .classify import Classification
from .rules import load_rules

LANGUAGES = ("de", "en", "es")
PLACEHOLDERS = frozenset(
    {"recipient", "domain", "provider_name", "postmaster", "source_ips", "code", "suggestion",
     "partner_ips", "missing_records", "next_attempt",
     # held mail and reports after a 250 (explaining.py)
     "sender_domain", "message_id", "expires", "accepted_at", "bounced_at",
     # the sender line (cli/render.py)
     "requested", "state", "address"}
)


@dataclass(frozen=True, slots=True)
class ExplanationContext:
    """What is known around the reply; every field is optional."""

    recipient: str | None = None
    source_ips: tuple[str, ...] = ()
    partner_ips: tuple[str, ...] = ()
    suggestion: str | None = None  # a likely intended address (recipients/)
    missing_records: tuple[str, ...] = ()  # sender-domain DNS records not in place (domains/)
    state: str | None = None  # the delivery's state, for the status line
    next_attempt: str | None = None


@dataclass(frozen=True, slots=True)
class Explanation:
    id: str  # e.g. "blocklisted" or "blocklisted.t-online"
    lang: str
    cause: str
    fix: str
    status: str | None = None
    extras: list[str] = field(default_factory=list)

    def text(self) -> str:
        parts = [self.cause, self.fix, *self.extras]
        if self.status:
            parts.insert(0, self.status)
        return "\n".join(parts)


@cache
def texts(lang: str) -> dict:
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r}: use one of {', '.join(LANGUAGES)}")
    with (resources.files(__package__) / "explanations" / f"{lang}.toml").open("rb") as f:
        return tomllib.load(f)


def explanation_ids() -> set[str]:
    return {key for key in texts("en") if not key.startswith("_")}


# Which fact each placeholder needs. A text that names a fact not known here is never filled with
# a stand-in phrase ("the address the recipient does not exist at the receiving server"): the
# entry holds a whole sentence written for that case, under KEY_without_FACT[_and_FACT].
FACTS = {"recipient": "recipient", "domain": "recipient", "provider_name": "provider", "postmaster": "provider",
         "source_ips": "source_ips"}
STOPPED_STATES = ("bounced", "expired")


def variant_key(entry: dict, key: str, known: set[str]) -> str:
    """The key of the text to use: ``key`` when every fact it names is known, else the variant
    written without the unknown ones (KeyError when that variant is missing: a test pins it)."""
    missing = sorted({FACTS[name] for name in placeholders(entry[key]) if name in FACTS} - known)
    return f"{key}_without_{'_and_'.join(missing)}" if missing else key


def explain(reply: Classification, lang: str, context: ExplanationContext = ExplanationContext()) -> Explanation:
    table = texts(lang)
    key = f"{reply.category.value}.{reply.provider}" if reply.provider else None
    if key not in table:
        key = reply.category.value
    provider = load_rules().provider(reply.provider) if reply.provider else None
    recipient = context.recipient
    known = {fact for fact, there in (("recipient", recipient), ("provider", provider),
                                       ("source_ips", context.source_ips)) if there}
    values = {
        "recipient": recipient or "",
        "domain": recipient.rpartition("@")[2] if recipient else "",
        "provider_name": provider.name if provider else "",
        "postmaster": provider.postmaster if provider else "",
        "source_ips": ", ".join(context.source_ips),
        "code": "",
        "suggestion": context.suggestion or "",
        "partner_ips": ", ".join(context.partner_ips),
        "missing_records": ", ".join(context.missing_records),
        "next_attempt": context.next_attempt or "",
    }
    entry = table[key]
    # Once Postbote has stopped, a text that promises another try would contradict the status.
    fix = "fix_stopped" if context.state in STOPPED_STATES and "fix_stopped" in entry else "fix"
    cause = entry[variant_key(entry, "cause", known)].format_map(values)
    fix = entry[variant_key(entry, fix, known)].format_map(values)
    extras = [table["_extra"][name].format_map(values) for name in _extras(reply, context, provider)]
    status = table["_status"][context.state].format_map(values) if context.state else None
    return Explanation(key, lang, cause, fix, status, extras)


def _extras(reply: Classification, context: ExplanationContext, provider) -> list[str]:
    wanted = []
    category = reply.category.value
    if context.suggestion and category in ("invalid_recipient", "host_unknown"):
        wanted.append("suggestion")
    if context.partner_ips and category in ("blocklisted", "policy"):
        wanted.append("partner_ips")
    if context.missing_records and category == "auth_failure":
        wanted.append("missing_records")
    if provider and provider.postmaster and category not in ("greylisted", "invalid_recipient", "mailbox_full",
                                                                        "host_unknown", "mailbox_disabled", "expired"):
        wanted.append("postmaster")
    return wanted


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name}
