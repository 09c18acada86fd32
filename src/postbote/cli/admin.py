"""``postbote admin key …`` (the keys the platform's backend manages tenants with over the API)
and the operator's tenant commands ``tenant suspend``, ``tenant resume`` and ``tenant settings``.
Admin keys are made only here, on the host that holds the store: no API call can make one."""

from __future__ import annotations

from typing import Optional

import typer

from ..admins import create_admin_key, list_admin_keys, resume, revoke_admin_key, suspend, tenant_json, update_settings
from ..tenants import get_tenant
from .context import JsonOpt, guarded
from .output import cell, console, emit_json

admin_cli = typer.Typer(no_args_is_help=True, help="The platform's operators: admin keys for /v1/admin.")
admin_key_cli = typer.Typer(no_args_is_help=True, help="Admin keys: create, list, revoke.")
admin_cli.add_typer(admin_key_cli, name="key")


@admin_key_cli.command("create")
def admin_key_create(label: str = typer.Argument(..., help="Who or what uses it, e.g. hr-backend."),
                     as_json: bool = JsonOpt) -> None:
    """Make an admin key. It is shown once; only its hash is stored."""
    with guarded(as_json) as app:
        app.check_store()
        key = create_admin_key(app.engine, label)
        if as_json:
            emit_json({"admin_key": key, "prefix": key[:12], "label": label.strip()})
        else:
            console.print(key, highlight=False, markup=False)
            console.print("Store it now: Postbote keeps only its hash and cannot show it again. "
                          "It manages every tenant: keep it out of tenants' hands.", style="dim")


@admin_key_cli.command("list")
def admin_key_list(as_json: bool = JsonOpt) -> None:
    """Admin keys: prefix, label, made, last used, revoked. Never the keys themselves."""
    with guarded(as_json) as app:
        app.check_store()
        keys = [k.to_dict() for k in list_admin_keys(app.engine)]
        if as_json:
            emit_json(keys)
        for k in [] if as_json else keys:
            state = "active" if k["active"] else f"revoked {k['revoked_at']}"
            console.print(f"{k['prefix']}…  {cell(k['label'])}  made {k['created_at']}  "
                          f"last used {k['last_used_at'] or '—'}  {state}", highlight=False, markup=False)


@admin_key_cli.command("revoke")
def admin_key_revoke(prefix: str, as_json: bool = JsonOpt) -> None:
    """Stop an admin key from working, at once."""
    with guarded(as_json) as app:
        app.check_store()
        revoke_admin_key(app.engine, prefix)
        emit_json({"prefix": prefix, "revoked": True}) if as_json else console.print(f"admin key {prefix} revoked")


def tenant_suspend(name: str, reason: str = typer.Option(..., "--reason", help="Why; kept and shown to the tenant."),
                   as_json: bool = JsonOpt) -> None:
    """Suspend a tenant: its API calls answer 403 and its pending mail waits until it is resumed."""
    with guarded(as_json) as app:
        app.check_store()
        data = tenant_json(app.engine, suspend(app.engine, name, reason))
        emit_json(data) if as_json else console.print(f"tenant {name} suspended: {cell(data['suspended_reason'])}")


def tenant_resume(name: str, as_json: bool = JsonOpt) -> None:
    """Lift a tenant's suspension: its keys work again and its waiting mail goes."""
    with guarded(as_json) as app:
        app.check_store()
        data = tenant_json(app.engine, resume(app.engine, name))
        emit_json(data) if as_json else console.print(f"tenant {name} resumed")


def tenant_settings(
    name: str,
    language: Optional[str] = typer.Option(None, "--language", help="Default language: de, en, es …"),
    time_zone: Optional[str] = typer.Option(None, "--time-zone", help="IANA name, e.g. Europe/Berlin."),
    sender_policy: Optional[str] = typer.Option(None, "--sender-policy", help="fallback or hold."),
    hourly_limit: Optional[int] = typer.Option(None, "--hourly-limit", help="Recipients accepted per rolling hour."),
    no_hourly_limit: bool = typer.Option(False, "--no-hourly-limit", help="Lift the hourly limit."),
    as_json: bool = JsonOpt,
) -> None:
    """Show a tenant's settings, or change those given."""
    changes: dict = {k: v for k, v in (("language", language), ("time_zone", time_zone),
                                       ("sender_policy", sender_policy), ("hourly_limit", hourly_limit)) if v is not None}
    if no_hourly_limit:
        changes["hourly_limit"] = None
    with guarded(as_json) as app:
        app.check_store()
        tenant = update_settings(app.engine, name, changes) if changes else get_tenant(app.engine, name)
        data = tenant_json(app.engine, tenant)
        if as_json:
            emit_json(data)
            return
        s = data["settings"]
        limit = f"{s['hourly_limit']:,} recipients an hour" if s["hourly_limit"] else "no hourly limit"
        state = f"suspended since {data['suspended_at']}: {data['suspended_reason']}" if data["suspended"] else "active"
        console.print(f"{data['name']} ({data['display_name']}): {state}; language {s['language']}, time zone "
                      f"{s['time_zone']}, sender policy {s['sender_policy']}, {limit}", highlight=False, markup=False)
