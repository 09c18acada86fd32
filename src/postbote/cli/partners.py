"""``postbote partner …``: the registry of partners that send in tenants' names (the e-signature
provider). Platform-wide, so the operator's tool: tenants read it through the API."""

from __future__ import annotations

from typing import Optional

import typer

from ..domains import add_partner, list_partners, remove_partner
from .context import JsonOpt, guarded
from .output import console, emit_json

partner_cli = typer.Typer(no_args_is_help=True, help="Partners that send mail in tenants' names.")


@partner_cli.command("add")
def partner_add(
    name: str,
    ip: list[str] = typer.Option([], "--ip", help="A sending IP (repeat)."),
    host: list[str] = typer.Option([], "--host", help="A sending host name (repeat)."),
    spf_include: Optional[str] = typer.Option(None, "--spf-include", help="What tenants add as include: to SPF."),
    dkim_domain: Optional[str] = typer.Option(None, "--dkim-domain", help="Where the partner publishes its key."),
    dkim_selector: Optional[str] = typer.Option(None, "--dkim-selector", help="The selector tenants delegate."),
    as_json: bool = JsonOpt,
) -> None:
    """Register a partner."""
    with guarded(as_json) as app:
        app.check_store()
        partner = add_partner(app.engine, app.settings, {"name": name, "ips": ip, "hosts": host,
                                                         "spf_include": spf_include, "dkim_domain": dkim_domain,
                                                         "dkim_selector": dkim_selector})
        emit_json(partner.to_dict()) if as_json else console.print(f"partner {partner.name} registered")


@partner_cli.command("list")
def partner_list(as_json: bool = JsonOpt) -> None:
    """The registered partners."""
    with guarded(as_json) as app:
        found = [p.to_dict() for p in list_partners(app.engine, app.settings)]
        if as_json:
            emit_json(found)
        for p in [] if as_json else found:
            console.print(f"{p['name']}: ips {', '.join(p['ips']) or '—'}; hosts {', '.join(p['hosts']) or '—'}; "
                          f"spf include {p['spf_include'] or '—'}; dkim {p['dkim_selector'] or '—'}"
                          f"{'._domainkey.' + p['dkim_domain'] if p['dkim_domain'] else ''}", highlight=False)


@partner_cli.command("remove")
def partner_remove(name: str, as_json: bool = JsonOpt) -> None:
    """Remove a partner (the old settings never bring it back)."""
    with guarded(as_json) as app:
        remove_partner(app.engine, app.settings, name)
        emit_json({"name": name, "removed": True}) if as_json else console.print(f"partner {name} removed")
