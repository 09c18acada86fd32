"""Why did it (not) arrive? The service behind ``postbote explain``, ``postbote report``, the
explanation in ``GET /v1/messages/{id}`` and the feedback on explanations. It joins what the
queue recorded with what replies/ knows, in the language asked for."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, insert, select

from .db.schema import explanation_feedback, iso_utc, messages, utcnow
from .errors import InputError, NotFoundError
from .compose import parse_mailbox
from .domains import find_domain
from .queue import MessageView, RecipientView, feedback_counts, message_status, outcome_counts
from .recipients import suggest
from .replies import (
    LANGUAGES,
    ExplanationContext,
    Reply,
    classify,
    explain,
    explanation_ids,
    load_rules,
)
from .settings import Settings
from .tenants import Tenant
from .vocab import ReplyCategory


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise InputError(f"The language {lang!r} is not available.", hint="Use de, en or es.", code="language_unknown")
    return lang


# Words of a failure that got no reply at all (a refused or lost connection, a timeout, DNS).
# Pasted text with no reply code and none of these is no reply: nothing can be said about it.
_NO_ANSWER = re.compile(r"connect|timed?\s*out|timeout|refused|unreachable|no route|reset|lost|network|"
                        r"not found|resolv|dns|tls|handshake|host|eof|closed", re.IGNORECASE)


def _unreadable(reply: Reply, meaning) -> str | None:
    """'empty' or 'unreadable' when pasted text says nothing a server or a connection said."""
    if reply.code is not None or meaning.rule != "local.no-answer":
        return None
    if not reply.flat():
        return "empty"
    return None if _NO_ANSWER.search(reply.flat()) else "unreadable"


def explain_reply(settings: Settings, text: str, *, mx: str | None = None, lang: str | None = None) -> dict:
    """One reply, as pasted or read from a log: its classification and explanation. Text that is
    empty or no reply at all is ``unknown``, with a hint on what to paste, never a guess."""
    lang = check_language(lang or settings.LANGUAGE)
    reply = Reply.parse(text)
    meaning = classify(reply, mx)
    context = ExplanationContext(source_ips=tuple(settings.SOURCE_IPS), partner_ips=tuple(settings.PARTNER_IPS))
    unreadable = _unreadable(reply, meaning)
    if unreadable:
        return _not_a_reply(reply, unreadable, lang)
    explanation = explain(meaning, lang, context)
    return {
        "reply": str(reply),
        "code": reply.code,
        "enhanced_code": reply.enhanced_code,
        "category": meaning.category.value,
        "temporary": meaning.temporary,
        "provider": meaning.provider,
        "retry_after": meaning.retry_after,
        "rule": meaning.rule,
        "explanation_id": explanation.id,
        "cause": explanation.cause,
        "fix": " ".join([explanation.fix, *explanation.extras]),
        "lang": lang,
        "hint": None,
    }


def _not_a_reply(reply: Reply, kind: str, lang: str) -> dict:
    from .replies.explain import texts

    words = texts(lang)["_input"]
    return {
        "reply": str(reply), "code": None, "enhanced_code": None, "category": ReplyCategory.UNKNOWN.value,
        "temporary": False, "provider": None, "retry_after": None, "rule": f"input.{kind}",
        "explanation_id": "unknown", "cause": words[kind], "fix": words["fix"], "lang": lang, "hint": words["hint"],
    }


def explain_lines(settings: Settings, lines, *, lang: str | None = None):
    """Batch mode: each input line is a reply, or a JSON object {"reply": …, "mx": …}; yields one
    JSON line per input line, in order — a blank line too (it is an empty reply). A line that
    cannot be read yields an error object."""
    for line in lines:
        line = line.strip()
        try:
            if line.startswith("{"):
                item = json.loads(line)
                result = explain_reply(settings, str(item["reply"]), mx=item.get("mx"), lang=item.get("lang") or lang)
            else:
                result = explain_reply(settings, line, lang=lang)
        except (ValueError, KeyError, TypeError) as exc:
            result = {"error": {"code": "line_invalid", "message": f"Cannot read this line: {exc}",
                                "hint": 'Give a reply, or {"reply": "...", "mx": "..."} as JSON.'}}
        except InputError as exc:
            result = {"error": exc.to_dict()}
        yield json.dumps(result, ensure_ascii=False)


def recipient_explanation(settings: Settings, recipient: RecipientView, lang: str,
                          missing_records: tuple[str, ...] = ()) -> dict:
    """Where a recipient stands, explained from its last attempt (re-read with today's rules)."""
    context_args = dict(recipient=recipient.address, source_ips=tuple(settings.SOURCE_IPS),
                        partner_ips=tuple(settings.PARTNER_IPS), state=recipient.state,
                        next_attempt=_when(recipient.next_attempt_at), missing_records=missing_records)
    last = recipient.history[-1] if recipient.history else None
    report = recipient.reports[-1] if recipient.reports else None
    if report is not None and recipient.state == "bounced":
        return _bounced_later(settings, recipient, report, last, lang, context_args)
    if last is None or last.outcome == "delivered":
        return {"id": None, "lang": lang, "category": None, "status": _status_only(recipient, lang, context_args),
                "cause": None, "fix": None}
    meaning = classify(Reply(code=last.reply_code, text=last.reply, enhanced_code=last.enhanced_code), last.mx_host)
    if meaning.category in (ReplyCategory.INVALID_RECIPIENT, ReplyCategory.HOST_UNKNOWN):
        context_args["suggestion"] = suggest(recipient.address)
    explanation = explain(meaning, lang, ExplanationContext(**context_args))
    return {
        "id": explanation.id,
        "lang": lang,
        "category": meaning.category.value,
        "status": explanation.status,
        "cause": explanation.cause,
        "fix": " ".join([explanation.fix, *explanation.extras]),
    }


def _bounced_later(settings: Settings, recipient: RecipientView, report, accepted, lang: str,
                   context_args: dict) -> dict:
    """The receiving server said 250, and a report came later: classify and explain what the
    report says (its status and diagnostic), as if the server had said it at once."""
    from .inbound.meaning import classify_recipient
    from .inbound.parse import RecipientStatus
    from .replies.explain import texts

    meaning = classify_recipient(RecipientStatus(recipient.address, "failed", report.status, report.diagnostic),
                                 accepted.mx_host if accepted else None)
    if meaning.category in (ReplyCategory.INVALID_RECIPIENT, ReplyCategory.HOST_UNKNOWN):
        context_args["suggestion"] = suggest(recipient.address)
    context_args["state"] = None
    explanation = explain(meaning, lang, ExplanationContext(**context_args))
    status = texts(lang)["_status"]["bounced_later"].format(
        accepted_at=_when(accepted.started_at) if accepted else "-", bounced_at=_when(report.at))
    return {"id": explanation.id, "lang": lang, "category": meaning.category.value, "status": status,
            "cause": explanation.cause, "fix": " ".join([explanation.fix, *explanation.extras])}


def _status_only(recipient: RecipientView, lang: str, context_args: dict) -> str:
    from .replies.explain import texts

    return texts(lang)["_status"][recipient.state].format(next_attempt=context_args["next_attempt"] or "")


def _when(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else None


def message_story(engine: Engine, settings: Settings, message_id: str, *, lang: str | None = None,
                  tenant_id: int | None = None) -> tuple[MessageView, dict[str, dict]]:
    lang = check_language(lang or settings.LANGUAGE)
    view = message_status(engine, message_id, tenant_id=tenant_id)
    missing = _missing_records(engine, view)
    return view, {r.address: _not_sent(settings, view, r, lang) or recipient_explanation(settings, r, lang, missing)
                  for r in view.recipients}


def _not_sent(settings: Settings, view: MessageView, recipient: RecipientView, lang: str) -> dict | None:
    """Held and cancelled recipients never met a server: their story is the hold (why, and what
    releases it) or the cancellation, not a reply."""
    from .replies.explain import texts

    words = texts(lang)["_held"]
    if recipient.state == "cancelled":
        return {"id": "cancelled", "lang": lang, "category": None, "status": words["cancelled"], "cause": None, "fix": None}
    if recipient.state != "held":
        return None
    requested = view.requested_from or view.sender
    values = {"sender_domain": requested.rpartition("@")[2].rstrip(">").strip(), "message_id": view.id,
              "expires": _when(view.expires_at)}
    fix = words["fix_auto" if settings.RELEASE_HELD_ON_VERIFY else "fix_manual"]
    return {"id": "held", "lang": lang, "category": None, "status": words["status"],
            "cause": words["cause"].format_map(values), "fix": fix.format_map(values)}


def _missing_records(engine: Engine, view: MessageView) -> tuple[str, ...]:
    """The sender domain's records not in place at its last check, when the message asked for a
    domain of its own tenant: what an authentication failure's fix names."""
    if not view.requested_from:
        return ()
    try:
        domain = find_domain(engine, parse_mailbox(view.requested_from).domain, tenant_id=view.tenant_id)
    except InputError:
        return ()
    if domain is None or domain.tenant_id != view.tenant_id:
        return ()
    return tuple(f"{r['name']} {r['type']} {r['expected']}" for r in domain.records or []
                 if r["required"] and r["status"] != "ok")


@dataclass(frozen=True, slots=True)
class ReportLine:
    destination: str
    state: str
    category: str | None
    count: int


def report(engine: Engine, *, since: float, tenant_id: int | None = None) -> dict:
    """Outcomes of the last ``since`` seconds by destination (provider, else domain), state and
    category, largest first; and what readers said of the explanations."""
    start = utcnow() - timedelta(seconds=since)
    rules = load_rules()
    merged: dict[tuple[str, str, str | None], int] = defaultdict(int)
    for row in outcome_counts(engine, start, tenant_id):
        provider = rules.provider(row.provider) if row.provider else None
        merged[(provider.name if provider else row.domain, row.state, row.category)] += row.count
    lines = sorted((ReportLine(d, s, c, n) for (d, s, c), n in merged.items()),
                   key=lambda line: (-line.count, line.destination))
    return {
        "since": iso_utc(start),
        "outcomes": [{"destination": x.destination, "state": x.state, "category": x.category, "count": x.count}
                     for x in lines],
        "feedback": [{"explanation": f.explanation, "lang": f.lang, "helpful": f.helpful, "not_helpful": f.not_helpful}
                     for f in feedback_counts(engine, start, tenant_id)],
    }


def record_feedback(engine: Engine, tenant: Tenant, explanation_id: str, *, helpful: bool, lang: str,
                    message_id: str | None = None, comment: str | None = None) -> int:
    if explanation_id not in explanation_ids():
        raise NotFoundError(f"No explanation {explanation_id!r}.", hint="Use the explanation id shown with the text.",
                            code="explanation_not_found")
    check_language(lang)
    with engine.begin() as conn:
        if message_id is not None:
            owner = conn.execute(select(messages.c.tenant_id).where(messages.c.id == message_id)).scalar()
            if owner != tenant.id:
                raise NotFoundError(f"No message {message_id!r}.", code="message_not_found",
                                    hint="Give the id of one of your own messages, or none.")
        return conn.execute(
            insert(explanation_feedback).values(
                tenant_id=tenant.id, explanation=explanation_id, lang=lang, helpful=helpful,
                message_id=message_id, comment=(comment or None) and comment[:2000], created_at=utcnow(),
            )
        ).inserted_primary_key[0]
