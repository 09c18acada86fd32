"""``postbote address …`` and ``postbote suppression …``."""

from __future__ import annotations

import asyncio
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..recipients import check_addresses, find_many
from ..recipients.suppression import export_csv, remove, search, suppress
from ..tenants import get_tenant
from .context import JsonOpt, guarded
from .output import cell, console, emit_json

address_cli = typer.Typer(no_args_is_help=True, help="Check addresses before sending to them.")
suppression_cli = typer.Typer(no_args_is_help=True, help="Addresses a tenant's mail does not go to.")


@address_cli.command("check")
def check(addresses: list[str] = typer.Argument(..., help="One or more addresses."),
          tenant: Optional[str] = typer.Option(None, "--tenant", help="Also check this tenant's suppression list."),
          as_json: bool = JsonOpt) -> None:
    """Syntax, domain and mail server, suppression, and the address probably meant."""
    with guarded(as_json) as app:
        suppressed = {}
        if tenant:
            app.check_store()
            suppressed = find_many(app.engine, get_tenant(app.engine, tenant).id, addresses)
        results = asyncio.run(check_addresses(addresses, app.settings, app.resolver, suppressed))
        if as_json:
            emit_json([r.to_dict() for r in results])
            return
        table = Table()
        for column in ("address", "ok", "normalized", "reason", "suggestion"):
            table.add_column(column, overflow="fold")
        for r in results:
            table.add_row(cell(r.address), Text("yes" if r.ok else "no", style="green" if r.ok else "red"), cell(r.normalized),
                          cell(r.message), cell(r.suggestion))
        console.print(table)


@suppression_cli.command("list")
def list_(tenant: str = typer.Option(..., "--tenant"), search_text: str = typer.Option("", "--search", help="Part of an address."),
          as_json: bool = JsonOpt) -> None:
    """The tenant's suppressed addresses, newest first."""
    with guarded(as_json) as app:
        app.check_store()
        entries = search(app.engine, get_tenant(app.engine, tenant).id, search_text)
        if as_json:
            emit_json([e.to_dict() for e in entries])
            return
        table = Table()
        for column in ("address", "reason", "since", "until", "detail"):
            table.add_column(column, overflow="fold")
        for e in entries:
            table.add_row(cell(e.address), cell(e.reason), e.created_at.strftime("%Y-%m-%d"),
                          e.expires_at.strftime("%Y-%m-%d") if e.expires_at else "", cell((e.detail or "")[:80]))
        console.print(table)


@suppression_cli.command("add")
def add(address: str, tenant: str = typer.Option(..., "--tenant"),
        reason: str = typer.Option("manual", "--reason", help="hard_bounce, complaint, unsubscribed or manual"),
        detail: Optional[str] = typer.Option(None, "--detail"), as_json: bool = JsonOpt) -> None:
    """Stop mail to an address."""
    with guarded(as_json) as app:
        app.check_store()
        entry = suppress(app.engine, get_tenant(app.engine, tenant).id, address, reason, detail=detail)
        emit_json(entry.to_dict()) if as_json else console.print(f"{cell(entry.address)} suppressed ({entry.reason})")


@suppression_cli.command("remove")
def remove_(address: str, tenant: str = typer.Option(..., "--tenant"),
            reason: str = typer.Option(..., "--reason", help="Why it may be mailed again."), as_json: bool = JsonOpt) -> None:
    """Allow mail to an address again; the reason is kept."""
    with guarded(as_json) as app:
        app.check_store()
        removed = remove(app.engine, get_tenant(app.engine, tenant).id, address, reason)
        emit_json({"address": removed, "removed": True}) if as_json else console.print(f"{escape(removed)} may be mailed again")


@suppression_cli.command("export")
def export(tenant: str = typer.Option(..., "--tenant")) -> None:
    """The tenant's suppression list as CSV."""
    with guarded(False) as app:
        app.check_store()
        print(export_csv(search(app.engine, get_tenant(app.engine, tenant).id, limit=1_000_000)), end="")


__all__ = ["address_cli", "suppression_cli"]
