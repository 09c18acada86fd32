"""``postbote inbound parse FILE…``: what Postbote reads in a bounce, complaint or auto-reply,
for operators who ask "what does this one say?". Pure: no store, no settings, nothing changes."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..errors import InputError
from ..inbound import Report, parse_report
from ..inbound.meaning import classify_recipient
from ..inbound.mime import MAX_READ
from ..replies import LANGUAGES, ExplanationContext, explain
from .context import JsonOpt
from .output import cell as escape
from .output import clean_data, console, emit_json, err_console, fail

inbound_cli = typer.Typer(no_args_is_help=True, help="Bounces and complaints that come back to the return path.")


@inbound_cli.command("parse")
def parse(files: list[Path] = typer.Argument(..., help="Messages as saved from a mailbox (.eml); - reads stdin."),
          lang: str = typer.Option("en", "--lang", help="Language of the explanations: de, en or es."),
          as_json: bool = JsonOpt) -> None:
    """Each file's kind (dsn, complaint, bounce, auto_reply, unreadable) and, per recipient, the
    action, status, the receiving server's reply, its category and what to do."""
    if lang not in LANGUAGES:
        fail(InputError(f"The language {lang!r} is not one Postbote explains in.", code="language_unknown",
                        hint=f"Use one of {', '.join(LANGUAGES)}."), as_json=as_json)
    results = []
    for path in files:
        try:
            results.append(describe(str(path), _read(path), lang))
        except InputError as error:  # one unreadable file does not hide what the others say
            results.append({"file": str(path), "error": error.to_dict()})
    if as_json:
        emit_json(results)
    else:
        for result in results:
            _print(result)
    if any("error" in r for r in results):
        raise typer.Exit(2)


def describe(name: str, raw: bytes, lang: str) -> dict:
    """One file as a JSON-ready dict (the keys are listed in the README)."""
    report = parse_report(raw)
    return {
        "file": name,
        "kind": report.kind,
        "note": report.note or None,
        "feedback_type": report.feedback_type,
        "original_message_id": report.original_message_id,
        "complaint_recipients": report.original_recipients,
        "recipients": [_recipient(report, r, lang) for r in report.recipients],
    }


def _recipient(report: Report, status, lang: str) -> dict:
    entry = {"address": status.address, "action": status.action, "status": status.status,
             "diagnostic": status.diagnostic, "category": None, "temporary": None, "rule": None, "explanation": None}
    if report.kind in ("dsn", "bounce") and status.action in ("failed", "delayed"):
        meaning = classify_recipient(status)
        explanation = explain(meaning, lang, ExplanationContext(recipient=status.address))
        entry.update(category=meaning.category.value, temporary=meaning.temporary, rule=meaning.rule,
                     explanation={"id": explanation.id, "lang": lang, "cause": explanation.cause, "fix": explanation.fix})
    return entry


def _read(path: Path) -> bytes:
    try:
        if str(path) == "-":
            return typer.get_binary_stream("stdin").read(MAX_READ)
        with path.open("rb") as f:
            return f.read(MAX_READ)  # the reader looks at no more than this
    except OSError as exc:
        raise InputError(f"The file {str(path)!r} cannot be read: {exc.strerror or exc}.", code="file_unreadable",
                         hint="Give the path of a message saved from a mailbox, e.g. bounce.eml.") from None


def _print(result: dict) -> None:
    result = clean_data(result)
    if "error" in result:
        err_console.print(f"[bold red]error\\[{escape(result['error']['code'])}][/]: {escape(result['error']['message'])}",
                          highlight=False)
        err_console.print(f"hint: {escape(result['error']['hint'])}", highlight=False)
        return
    header = f"[bold]{escape(result['file'])}[/]: {escape(result['kind'])}"
    if result["feedback_type"]:
        header += f" ({escape(result['feedback_type'])})"
    if result["note"]:
        header += f" — {escape(result['note'])}"
    console.print(header, highlight=False)
    if result["complaint_recipients"]:
        console.print("  complaint about: " + escape(", ".join(result["complaint_recipients"])), highlight=False)
    if not result["recipients"]:
        return
    table = Table()
    for column in ("recipient", "action", "status", "category", "retry", "reply"):
        table.add_column(column, overflow="fold")
    for r in result["recipients"]:
        retry = "" if r["temporary"] is None else ("yes" if r["temporary"] else "no")
        table.add_row(escape(r["address"]), escape(r["action"]), escape(r["status"] or ""), r["category"] or "", retry,
                      escape(r["diagnostic"][:200]))
    console.print(table)
    for r in result["recipients"]:
        if r["explanation"]:
            console.print(f"  {escape(r['address'])}: {escape(r['explanation']['cause'])} "
                          f"{escape(r['explanation']['fix'])}", highlight=False)


@inbound_cli.command("refused")
def refused(since: str = typer.Option("7d", "--since", help="How far back: 30m, 24h, 7d …"), as_json: bool = JsonOpt) -> None:
    """Reports the receiver took but did not apply, because they named an address that was no
    recipient of the message (a forged or mistaken report): when, which message, what it named."""
    from ..durations import parse_duration
    from ..inbound.apply import refused_reports
    from .context import guarded

    with guarded(as_json) as app:
        app.check_store()
        try:
            seconds = parse_duration(since)
        except ValueError as exc:
            raise InputError(str(exc), code="duration_invalid", hint="Write e.g. 30m, 24h or 7d.") from None
        rows = refused_reports(app.engine, since_seconds=seconds)
        if as_json:
            emit_json(rows)
            return
        table = Table()
        for column in ("at", "tenant", "message", "kind", "named"):
            table.add_column(column, overflow="fold")
        for r in rows:
            table.add_row(r["at"], escape(r["tenant"]), r["message_id"], escape(r["kind"] or ""), escape(r["recipient"] or ""))
        console.print(table)
