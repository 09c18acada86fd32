"""``postbote tenant key …``: API keys. ``tenant key NAME`` makes one (as before); ``list``,
``revoke`` and ``rotate`` manage them. A key is shown only when it is made; listings show its
prefix, when it was made and last used, and whether it was revoked."""

from __future__ import annotations

import typer
from rich.table import Table
from typer.core import TyperGroup

from ..tenants import create_key, get_tenant, list_keys, revoke_key, rotate_key
from .context import JsonOpt, guarded
from .output import cell, console, emit_json


class _KeyGroup(TyperGroup):
    """``tenant key acme`` still makes a key: a first word that is no subcommand means ``create``."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["create", *args]
        return super().resolve_command(ctx, args)


key_cli = typer.Typer(cls=_KeyGroup, no_args_is_help=True,
                      help="A tenant's API keys: NAME makes one; list, revoke, rotate.")


def _show_new(tenant: str, key: str, as_json: bool, **extra) -> None:
    if as_json:
        emit_json({"tenant": tenant, "api_key": key, "prefix": key[:10], **extra})
    else:
        console.print(key, highlight=False, markup=False)
        console.print("Store it now: Postbote keeps only its hash and cannot show it again.", style="dim")


@key_cli.command("create")
def create(name: str, as_json: bool = JsonOpt) -> None:
    """Create an API key for a tenant. It is shown once; only its hash is stored."""
    with guarded(as_json) as app:
        app.check_store()
        _show_new(name, create_key(app.engine, get_tenant(app.engine, name)), as_json)


@key_cli.command("list")
def list_(name: str, as_json: bool = JsonOpt) -> None:
    """The tenant's keys: prefix, created, last used, revoked. Never the keys themselves."""
    with guarded(as_json) as app:
        app.check_store()
        keys = [k.to_dict() for k in list_keys(app.engine, get_tenant(app.engine, name))]
        if as_json:
            emit_json(keys)
            return
        table = Table()
        for column in ("prefix", "created", "last used", "revoked"):
            table.add_column(column)
        for k in keys:
            table.add_row(cell(k["prefix"]) + "…", k["created_at"], k["last_used_at"] or "never", k["revoked_at"] or "")
        console.print(table)


@key_cli.command("revoke")
def revoke(name: str, prefix: str = typer.Argument(..., help="The key's prefix, as 'list' shows it."),
           as_json: bool = JsonOpt) -> None:
    """Stop a key from working, at once."""
    with guarded(as_json) as app:
        app.check_store()
        key = revoke_key(app.engine, get_tenant(app.engine, name), prefix.rstrip("…."))
        emit_json(key.to_dict()) if as_json else console.print(f"key {cell(key.prefix)}… revoked")


@key_cli.command("rotate")
def rotate(name: str, prefix: str = typer.Argument(..., help="The prefix of the key to replace."),
           as_json: bool = JsonOpt) -> None:
    """A new key, shown once, and the old one revoked in the same step."""
    with guarded(as_json) as app:
        app.check_store()
        key = rotate_key(app.engine, get_tenant(app.engine, name), prefix.rstrip("…."))
        _show_new(name, key, as_json, revoked=prefix.rstrip("…."))


__all__ = ["key_cli"]
