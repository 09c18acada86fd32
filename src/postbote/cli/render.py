"""What the CLI shows people (the --json shapes live in postbote.views)."""

from __future__ import annotations

import secrets

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..settings import Settings
from .output import clean_data

_STATE_STYLE = {"delivered": "green", "queued": "cyan", "deferred": "yellow", "bounced": "red", "expired": "red"}


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

def accepted(data: dict) -> Table:
    data = clean_data(data)
    note = f"\nsender: {data['sender']['used']} — {data['sender']['note']}" if data["sender"]["note"] else ""
    table = Table(title=escape(f"message {data['id']}{note}"), title_justify="left")
    table.add_column("recipient")
    table.add_column("state")
    for r in data["recipients"]:
        table.add_row(escape(r["address"]), Text(r["state"], style=_STATE_STYLE.get(r["state"], "")))
    for r in data["refused"]:
        suggestion = f" Did you mean {r['suggestion']}?" if r["suggestion"] else ""
        table.add_row(escape(r["address"]), Text(f"refused: {r['message']}{suggestion}", style="red"))
    return table


def _sender_line(data: dict) -> str:
    note = data["sender"].get("note")
    return f"\nsender: {data['from']}" + (f" — asked for {data['sender']['requested']}: {note}" if note else "")


def status(data: dict) -> Table:
    data = clean_data(data)
    table = Table(title=escape(f"{data['id']}  {data['subject']!r}{_sender_line(data)}"), title_justify="left")
    for column in ("recipient", "state", "attempts", "last reply / next attempt"):
        table.add_column(column)
    for r in data["recipients"]:
        detail = r["last_reply"] or ""
        if r["next_attempt_at"]:
            detail += f"\nnext attempt {r['next_attempt_at']}"
        for a in r["history"]:
            where = f"{a['mx_host']} [{a['mx_ip']}]" if a["mx_host"] else "no connection"
            detail += f"\n  {a['started_at']} {where} from {a['source_ip'] or '-'}: {a['reply']}"
        table.add_row(escape(r["address"]), Text(r["state"], style=_STATE_STYLE.get(r["state"], "")), str(r["attempts"]),
                      escape(detail.strip()))
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
    return out


def story(data: dict) -> Text:
    data = clean_data(data)
    out = Text()
    out.append(f"{data['id']}  {data['subject']!r}{_sender_line(data)}\n", style="bold")
    for r in data["recipients"]:
        explanation = r["explanation"] or {}
        words = _labels(explanation.get("lang", "en"))
        out.append(f"\n{r['address']}  ", style="bold")
        out.append(r["state"], style=_STATE_STYLE.get(r["state"], ""))
        out.append(f"  {explanation.get('status') or ''}\n")
        for a in r["history"]:
            where = f"{a['mx_host']} [{a['mx_ip']}]" if a["mx_host"] else "no connection"
            out.append(f"  {a['started_at']}  {where}  ", style="dim")
            out.append(f"{a['reply_code'] or ''} {a['reply']}".strip())
            if a["category"]:
                out.append(f"  ({a['category']})", style="yellow")
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
