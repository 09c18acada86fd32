"""What the CLI shows people (the --json shapes live in postbote.views)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from ..settings import Settings

_STATE_STYLE = {"delivered": "green", "queued": "cyan", "deferred": "yellow", "bounced": "red", "expired": "red"}


def config_file(settings: Settings) -> str:
    lines = ["# Postbote settings. Environment variables POSTBOTE_<NAME> override these.", ""]
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        lines.append(f"# {field.description}")
        if isinstance(value, list):
            rendered = "[" + ", ".join(f'"{v}"' for v in value) + "]"
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            rendered = repr(value)
        else:
            rendered = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
        lines.append(f"{name} = {rendered}")
        lines.append("")
    return "\n".join(lines)


def accepted(data: dict) -> Table:
    table = Table(title=f"message {data['id']}", title_justify="left")
    table.add_column("recipient")
    table.add_column("state")
    for r in data["recipients"]:
        table.add_row(r["address"], Text(r["state"], style=_STATE_STYLE.get(r["state"], "")))
    return table


def status(data: dict) -> Table:
    table = Table(title=f"{data['id']}  {data['subject']!r}  from {data['from']}", title_justify="left")
    for column in ("recipient", "state", "attempts", "last reply / next attempt"):
        table.add_column(column)
    for r in data["recipients"]:
        detail = r["last_reply"] or ""
        if r["next_attempt_at"]:
            detail += f"\nnext attempt {r['next_attempt_at']}"
        for a in r["history"]:
            where = f"{a['mx_host']} [{a['mx_ip']}]" if a["mx_host"] else "no connection"
            detail += f"\n  {a['started_at']} {where} from {a['source_ip'] or '-'}: {a['reply']}"
        table.add_row(r["address"], Text(r["state"], style=_STATE_STYLE.get(r["state"], "")), str(r["attempts"]), detail.strip())
    return table


def worker_summary(summary: dict) -> str:
    outcomes = ", ".join(f"{n} {state}" for state, n in sorted(summary["outcomes"].items())) or "nothing to do"
    return f"worker: {outcomes} in {summary['seconds']}s"
