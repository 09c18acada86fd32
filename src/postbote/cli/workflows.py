"""``postbote event …`` and ``postbote workflow …``: events and workflows for operators — the same
use cases as the API, one tenant at a time."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import InputError
from ..tenants import get_tenant
from ..workflows import (
    Deps,
    get_workflow,
    handle_event,
    list_versions,
    list_workflows,
    preview,
    save_workflow,
    set_enabled,
    set_fallback_language,
    test_send,
)
from .context import JsonOpt, guarded, run_async
from .output import console, emit_json

event_cli = typer.Typer(no_args_is_help=True, help="Events from the HR platform, as workflows see them.")
workflow_cli = typer.Typer(no_args_is_help=True, help="Workflows per tenant: versions, enable, preview, test send.")
TenantOpt = typer.Option(..., "--tenant", help="The tenant the event or workflow belongs to.")
MAX_FILE = 1_000_000


def _read_json(path: str) -> Any:
    text = sys.stdin.read(MAX_FILE + 1) if path == "-" else Path(path).read_text(encoding="utf-8")[:MAX_FILE + 1]
    if len(text) > MAX_FILE:
        raise InputError(f"{path} is larger than {MAX_FILE} bytes.", code="file_too_large")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not JSON: line {exc.lineno}: {exc.msg}.", code="json_invalid",
                         hint="Write the workflow or event as one JSON object (see the README).") from None


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"{what} {item!r} is not NAME=VALUE.", code="option_invalid",
                             hint=f"Write e.g. --{what} stage=interview.")
        out[name] = value
    return out


def _deps(app) -> Deps:
    return Deps(app.engine, app.settings, app.resolver)


def _print_results(answer: dict) -> None:
    for r in answer.get("results", []):
        where = f"workflow {r['workflow_id']} v{r['version']}" if "workflow_id" in r else "—"
        what = r.get("message_id") or r.get("reason") or ""
        console.print(f"{where}: {r['outcome']} {r.get('recipient', '')} {r.get('lang', '')} {what}".rstrip())


@event_cli.command("send")
def event_send(
    event_type: Optional[str] = typer.Argument(None, metavar="TYPE", help="e.g. candidate.stage_changed"),
    tenant: str = TenantOpt,
    key: Optional[str] = typer.Option(None, "--key", help="Idempotency key: the same key twice fires once."),
    person: list[str] = typer.Option([], "--person", help="ROLE=EMAIL, e.g. candidate=lea@example.com"),
    lang: list[str] = typer.Option([], "--lang", help="ROLE=LANG, e.g. candidate=de"),
    field: list[str] = typer.Option([], "--field", help="NAME=VALUE, e.g. stage=interview"),
    file: Optional[str] = typer.Option(None, "--file", help="The whole event as JSON ('-': standard input)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would happen; send and record nothing."),
    as_json: bool = JsonOpt,
) -> None:
    """Fire an event: each matching workflow's messages, or why none."""
    with guarded(as_json) as app:
        app.check_store()
        data: dict[str, Any] = _read_json(file) if file else {}
        if event_type:
            data["type"] = event_type
        if key:
            data["idempotency_key"] = key
        people = data.setdefault("people", {})
        for role, address in _pairs(person, "person").items():
            people.setdefault(role, {})["email"] = address
        for role, code in _pairs(lang, "lang").items():
            people.setdefault(role, {})["lang"] = code
        data.setdefault("fields", {}).update(_pairs(field, "field"))
        answer = run_async(handle_event(_deps(app), get_tenant(app.engine, tenant), data, dry_run=dry_run))
        emit_json(answer) if as_json else _print_results(answer)


@workflow_cli.command("add")
def workflow_add(file: str = typer.Argument(..., help="The workflow as JSON ('-': standard input)."),
                 tenant: str = TenantOpt, disabled: bool = typer.Option(False, "--disabled"),
                 as_json: bool = JsonOpt) -> None:
    """Create a workflow; prints its id and each action's sender verdict now."""
    with guarded(as_json) as app:
        app.check_store()
        saved = run_async(save_workflow(_deps(app), get_tenant(app.engine, tenant), _read_json(file),
                                        enabled=not disabled))
        _print_saved(saved, as_json)


@workflow_cli.command("edit")
def workflow_edit(workflow_id: int, file: str = typer.Argument(..., help="The new definition as JSON."),
                  tenant: str = TenantOpt, as_json: bool = JsonOpt) -> None:
    """Save a new version of a workflow."""
    with guarded(as_json) as app:
        app.check_store()
        saved = run_async(save_workflow(_deps(app), get_tenant(app.engine, tenant), _read_json(file),
                                        workflow_id=workflow_id))
        _print_saved(saved, as_json)


def _print_saved(saved: dict, as_json: bool) -> None:
    if as_json:
        emit_json(saved)
        return
    console.print(f"workflow {saved['id']} version {saved['version']} ({'enabled' if saved['enabled'] else 'disabled'})")
    for i, sender in enumerate(saved["senders"]):
        console.print(f"  action {i} sender {sender['address']}: {sender['verdict']}")
        for record in sender["missing_records"]:
            console.print(f"    publish: {record}")


@workflow_cli.command("list")
def workflow_list(tenant: str = TenantOpt, as_json: bool = JsonOpt) -> None:
    """The tenant's workflows at their current versions."""
    with guarded(as_json) as app:
        flows = [w.to_dict() for w in list_workflows(app.engine, get_tenant(app.engine, tenant).id)]
        if as_json:
            emit_json(flows)
        for w in [] if as_json else flows:
            console.print(f"{w['id']}  v{w['version']}  {'on ' if w['enabled'] else 'off'}  {w['trigger']}  {w['name']}")


@workflow_cli.command("show")
def workflow_show(workflow_id: int, tenant: str = TenantOpt, version: Optional[int] = typer.Option(None, "--version"),
                  as_json: bool = JsonOpt) -> None:
    """One workflow (a given version, or the current one), as JSON."""
    with guarded(as_json) as app:
        emit_json(get_workflow(app.engine, get_tenant(app.engine, tenant).id, workflow_id, version).to_dict())


@workflow_cli.command("versions")
def workflow_versions(workflow_id: int, tenant: str = TenantOpt, as_json: bool = JsonOpt) -> None:
    """Every version, when it was made and how many messages it sent."""
    with guarded(as_json) as app:
        versions = list_versions(app.engine, get_tenant(app.engine, tenant).id, workflow_id)
        if as_json:
            emit_json(versions)
        for v in [] if as_json else versions:
            console.print(f"v{v['version']}  {v['created_at']}  {v['messages']} messages")


def _toggle(workflow_id: int, tenant: str, on: bool, as_json: bool) -> None:
    with guarded(as_json) as app:
        workflow = set_enabled(app.engine, get_tenant(app.engine, tenant).id, workflow_id, on)
        emit_json(workflow.to_dict()) if as_json else console.print(
            f"workflow {workflow.id} {'enabled' if workflow.enabled else 'disabled'}")


@workflow_cli.command("enable")
def workflow_enable(workflow_id: int, tenant: str = TenantOpt, as_json: bool = JsonOpt) -> None:
    """Let the workflow fire again."""
    _toggle(workflow_id, tenant, True, as_json)


@workflow_cli.command("disable")
def workflow_disable(workflow_id: int, tenant: str = TenantOpt, as_json: bool = JsonOpt) -> None:
    """Stop the workflow from firing (waiting mail is not sent either)."""
    _toggle(workflow_id, tenant, False, as_json)


@workflow_cli.command("preview")
def workflow_preview(workflow_id: int, tenant: str = TenantOpt, lang: Optional[str] = typer.Option(None, "--lang"),
                     file: Optional[str] = typer.Option(None, "--event", help="An event as JSON to render with."),
                     as_json: bool = JsonOpt) -> None:
    """Render each action with sample data or the event given."""
    with guarded(as_json) as app:
        shown = preview(_deps(app), get_tenant(app.engine, tenant), workflow_id,
                        event_data=_read_json(file) if file else None, lang=lang)
        if as_json:
            emit_json(shown)
            return
        for action in shown["actions"]:
            for r in action["renders"]:
                console.print(f"--- action {action['action']} [{r['lang']}] {r.get('subject') or r.get('error')}")
                console.print(r.get("text") or "", markup=False, highlight=False)


@workflow_cli.command("test")
def workflow_test(workflow_id: int, to: str = typer.Option(..., "--to", help="The only address the test goes to."),
                  tenant: str = TenantOpt, lang: Optional[str] = typer.Option(None, "--lang"),
                  as_json: bool = JsonOpt) -> None:
    """Send each action once to --to, the subject marked [TEST]."""
    with guarded(as_json) as app:
        app.check_store()
        answer = run_async(test_send(_deps(app), get_tenant(app.engine, tenant), workflow_id, to, lang=lang))
        emit_json(answer) if as_json else _print_results(answer)


@workflow_cli.command("fallback-language")
def workflow_fallback(lang: str, tenant: str = TenantOpt, as_json: bool = JsonOpt) -> None:
    """The language used when a recipient's language has no template."""
    with guarded(as_json) as app:
        chosen = set_fallback_language(app.engine, get_tenant(app.engine, tenant).id, lang)
        emit_json({"fallback_language": chosen}) if as_json else console.print(f"fallback language: {chosen}")
