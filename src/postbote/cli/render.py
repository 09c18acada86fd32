"""What the CLI shows people (the --json shapes live in postbote.views)."""

from __future__ import annotations

import re
import secrets

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..replies.explain import texts
from ..settings import Settings
from .output import cell, clean_data

_STATE_STYLE = {"delivered": "green", "queued": "cyan", "deferred": "yellow", "bounced": "red", "expired": "red",
                "held": "magenta", "cancelled": "dim"}


def state_text(state: str) -> Text:
    return Text(state, style=_STATE_STYLE.get(state, ""))


def config_file(settings: Settings) -> str:
    lines = ["# Postbote settings. Environment variables POSTBOTE_<NAME> override these.", ""]
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        lines.append(f"# {field.description}")
        if name == "PARTNERS":
            lines.append('# PARTNERS = [{ name = "SignIt", ips = ["198.51.100.5"], spf_include = "_spf.signit.example", '
                         'dkim_selector = "signit" }]')
            lines.append("")
            continue
        if name == "SECRET_KEY" and not value:
            value = secrets.token_urlsafe(32)  # a new installation gets its own master key
        if isinstance(value, list):
            rendered = "[" + ", ".join(f'"{v}"' for v in value) + "]"
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            rendered = repr(value)
        else:
            rendered = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
        lines.append(f"{name} = {rendered}")
        lines.append("")
    return "\n".join(lines)


# Everything shown here may come from a tenant, a recipient or a remote server: each function
# starts from clean_data (no control characters) and escapes markup where rich would read it.

def accepted(data: dict) -> Group:
    # The id is a line of its own, never a table title: a title wraps at the table's width.
    data = clean_data(data)
    note = f"\nsender: {data['sender']['used']} — {data['sender']['note']}" if data["sender"]["note"] else ""
    title = Text(f"message {data['id']}{note}")
    table = Table()
    table.add_column("recipient")
    table.add_column("state")
    for r in data["recipients"]:
        table.add_row(escape(r["address"]), Text(r["state"], style=_STATE_STYLE.get(r["state"], "")))
    for r in data["refused"]:
        suggestion = f" Did you mean {r['suggestion']}?" if r["suggestion"] else ""
        table.add_row(escape(r["address"]), Text(f"refused: {r['message']}{suggestion}", style="red"))
    return Group(title, table)


_NOTE_PARTS = [
    (re.compile(r"^(?P<domain>\S+) is not verified \((?P<state>\w+)\): its DNS records are not all in place$"), "not_verified"),
    (re.compile(r"^(?P<domain>\S+) is not a verified sender domain of this tenant$"), "not_own"),
    (re.compile(r"^held by the tenant's policy$"), "held"),
    (re.compile(r"^sent from the default sender with Reply-To (?P<address>\S+)$"), "fallback"),
]


def _note(note: str, words: dict) -> str:
    """The stored sender note (English, written by the sender choice) in the language asked for."""
    parts = []
    for part in note.split("; "):
        match = next(((m, key) for pattern, key in _NOTE_PARTS if (m := pattern.match(part))), None)
        parts.append(words[match[1]].format(**match[0].groupdict()) if match else part)
    return "; ".join(parts)


def _sender_line(data: dict, lang: str = "en") -> str:
    words = texts(lang)["_sender"]
    note = data["sender"].get("note")
    asked = words["asked_for"].format(requested=data["sender"]["requested"])
    return f"\n{words['label']}: {data['from']}" + (f" — {asked}: {_note(note, words)}" if note else "")


def _state(state: str, lang: str) -> str:
    return texts(lang)["_states"].get(state, state)


def _lang_of(data: dict) -> str:
    return next(((r.get("explanation") or {}).get("lang") for r in data["recipients"] if r.get("explanation")), "en")


def status(data: dict) -> Group:
    data = clean_data(data)
    lang = _lang_of(data)
    title = Text(f"{data['id']}  {data['subject']!r}{_sender_line(data, lang)}")
    table = Table()
    for column in ("recipient", "state", "attempts", "last reply / next attempt"):
        table.add_column(column)
    for r in data["recipients"]:
        detail = r["last_reply"] or ""
        explanation = r.get("explanation") or {}
        if r["state"] in ("held", "cancelled"):
            detail = " ".join(x for x in (explanation.get("status"), explanation.get("cause"), explanation.get("fix")) if x)
        if r["next_attempt_at"]:
            detail += f"\nnext attempt {r['next_attempt_at']}"
        for a in r["history"]:
            where = f"{a['mx_host']} [{a['mx_ip']}]" if a["mx_host"] else "no connection"
            detail += f"\n  {a['started_at']} {where} from {a['source_ip'] or '-'}: {a['reply']}"
        for x in r.get("reports", []):
            detail += f"\n  {x['at']} reported later ({x['source']}): {x['status'] or ''} {x['diagnostic']}"
        table.add_row(escape(r["address"]), Text(_state(r["state"], lang), style=_STATE_STYLE.get(r["state"], "")),
                      str(r["attempts"]), escape(detail.strip()))
    return Group(title, table)


def tenants(rows: list[dict]) -> Table | str:
    if not rows:
        return "no tenants yet: add one with 'postbote tenant add NAME'"
    table = Table()
    for column in ("name", "display name", "sender policy", "API keys"):
        table.add_column(column, no_wrap=column == "name")
    for t in rows:
        table.add_row(escape(t["name"]), cell(t["display_name"]), t["sender_policy"], str(t["api_keys"]))
    return table


def worker_summary(summary: dict) -> str:
    outcomes = ", ".join(f"{n} {state}" for state, n in sorted(summary["outcomes"].items())) or "nothing to do"
    return f"worker: {outcomes} in {summary['seconds']}s"


def _labels(lang: str) -> dict:
    from ..replies.explain import texts

    return texts(lang)["_words"]


def explained_reply(data: dict) -> Text:
    data = clean_data(data)
    words = _labels(data["lang"])
    retry = words["temporary_label"] if data["temporary"] else words["permanent_label"]
    out = Text()
    out.append(f"{data['reply']}\n", style="bold")
    out.append(f"{data['category']}", style=_CATEGORY_STYLE.get(data["category"], "yellow"))
    out.append(f" · {retry} · {data['provider'] or '-'} · rule {data['rule']}\n\n", style="dim")
    out.append(f"{words['cause_label']}: ", style="bold")
    out.append(f"{data['cause']}\n")
    out.append(f"{words['fix_label']}: ", style="bold")
    out.append(data["fix"])
    if data.get("hint"):
        out.append(f"\nhint: {data['hint']}")
    return out


def story(data: dict) -> Text:
    data = clean_data(data)
    out = Text()
    lang = _lang_of(data)
    out.append(f"{data['id']}  {data['subject']!r}{_sender_line(data, lang)}\n", style="bold")
    for r in data["recipients"]:
        explanation = r["explanation"] or {}
        words = _labels(explanation.get("lang", "en"))
        out.append(f"\n{r['address']}  ", style="bold")
        out.append(_state(r["state"], lang), style=_STATE_STYLE.get(r["state"], ""))
        out.append(f"  {explanation.get('status') or ''}\n")
        for a in r["history"]:
            where = f"{a['mx_host']} [{a['mx_ip']}]" if a["mx_host"] else "no connection"
            out.append(f"  {a['started_at']}  {where}  ", style="dim")
            out.append(f"{a['reply_code'] or ''} {a['reply']}".strip())
            if a["category"]:
                out.append(f"  ({a['category']})", style="yellow")
            out.append("\n")
        for x in r.get("reports", []):
            out.append(f"  {x['at']}  {words.get('reported_later', 'reported later')} ({x['source']})  ", style="dim")
            out.append(f"{x['status'] or ''} {x['diagnostic']}".strip())
            if x["category"]:
                out.append(f"  ({x['category']})", style="yellow")
            out.append("\n")
        if explanation.get("cause"):
            out.append(f"  {words['cause_label']}: ", style="bold")
            out.append(f"{explanation['cause']}\n")
            out.append(f"  {words['fix_label']}: ", style="bold")
            out.append(f"{explanation['fix']}\n")
    return out


def report(data: dict) -> Table:
    data = clean_data(data)
    table = Table(title=f"since {data['since']}", title_justify="left")
    for column in ("messages", "destination", "state", "reason"):
        table.add_column(column, justify="right" if column == "messages" else "left")
    for line in data["outcomes"]:
        table.add_row(str(line["count"]), escape(line["destination"]),
                      Text(line["state"], style=_STATE_STYLE.get(line["state"], "")), escape(line["category"] or ""))
    if data["feedback"]:
        table.add_section()
        for f in data["feedback"]:
            table.add_row("", f"explanation {f['explanation']} ({f['lang']})", "",
                          f"{f['helpful']} helpful, {f['not_helpful']} not helpful")
    return table


_CATEGORY_STYLE = {"greylisted": "cyan", "unavailable": "cyan", "invalid_recipient": "red", "blocklisted": "red"}
