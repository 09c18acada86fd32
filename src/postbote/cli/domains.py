"""``postbote domain …`` and ``postbote platform …``: sender domains and the platform zone."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from .. import domain_service as service
from ..tenants import get_tenant
from .context import JsonOpt, guarded
from .output import cell, clean_data, console, emit_json

domain_cli = typer.Typer(no_args_is_help=True, help="Sender domains of tenants: records, verification, health.")
platform_cli = typer.Typer(no_args_is_help=True, help="The platform's own DNS zone.")
TenantOpt = typer.Option(None, "--tenant", help="Act as this tenant: other tenants' domains do not exist.")
_STATUS = {"ok": "green", "missing": "yellow", "wrong": "red", "error": "red", "verified": "green", "pending": "yellow",
           "failed": "red", "broken": "red"}


def _tenant_id(app, tenant: str | None) -> int | None:
    return get_tenant(app.engine, tenant).id if tenant else None


def _records_table(data: dict) -> Table:
    # Names and values are copied into a DNS console: never folded (see cli.output).
    data = clean_data(data)  # "found" values come from DNS: anyone's text
    table = Table(title=cell(f"{data['domain']}: {data['state']}"), title_justify="left")
    for column in ("name", "type", "value", "purpose", "status"):
        table.add_column(column, no_wrap=column != "purpose")
    for r in data["records"]:
        status = r.get("status") or "unchecked"
        table.add_row(cell(r["name"] + "."), cell(r["type"]), cell(r.get("value") or r.get("expected")), cell(r["purpose"]),
                      Text(status, style=_STATUS.get(status, "")))
    return table


@domain_cli.command("add")
def add(domain: str, tenant: str = typer.Option(..., "--tenant", help="The tenant the domain belongs to."),
        as_json: bool = JsonOpt) -> None:
    """Add a sender domain: generates its DKIM keys and prints the CNAMEs for the tenant's IT team."""
    with guarded(as_json) as app:
        app.check_store()
        data = service.add(app, get_tenant(app.engine, tenant).id, domain)
        if as_json:
            emit_json(data)
        else:
            console.print(_records_table(data))
            console.print("Ask the IT team to publish these records, then run 'postbote domain verify "
                          f"{data['domain']}'. Until it is verified, mail falls back to the default sender.")


@domain_cli.command("records")
def records(domain: str, tenant: Optional[str] = TenantOpt, as_json: bool = JsonOpt,
            zone: bool = typer.Option(False, "--zone", help="A zone-file snippet to paste.")) -> None:
    """The records the tenant's IT team publishes, with their status from the last check."""
    with guarded(as_json) as app:
        app.check_store()
        from ..domains import get_domain

        data = service.domain_json(app, get_domain(app.engine, domain, tenant_id=_tenant_id(app, tenant)))
        if as_json:
            emit_json(data["records"])
        elif zone:
            for r in data["records"]:
                value = f'"{r["value"]}"' if r["type"] == "TXT" else r["value"] + "."
                print(f"; {r['purpose']}\n{r['name']}. 3600 IN {r['type']} {value}")
        else:
            console.print(_records_table(data))


@domain_cli.command("verify")
def verify(domain: str, tenant: Optional[str] = TenantOpt, as_json: bool = JsonOpt) -> None:
    """Check the domain's records in DNS now; prints its state and each record's status."""
    with guarded(as_json) as app:
        app.check_store()
        data = service.verify(app, domain, _tenant_id(app, tenant))
        if as_json:
            emit_json(data)
            return
        console.print(_records_table(data))
        _print_advice(data)


def _print_advice(data: dict) -> None:
    """Under the table, a sentence per record that is not ok: whose move it is."""
    for r in data["records"]:
        if r.get("advice") and (r["required"] or r["status"] != "missing"):
            console.print(f"{r['name']}: {r['advice']}" if not r["advice"].startswith(r["name"]) else r["advice"],
                          highlight=False)


@domain_cli.command("check")
def check(domain: str, tenant: Optional[str] = TenantOpt, as_json: bool = JsonOpt) -> None:
    """What receivers will see: SPF, DKIM, DMARC, MX, partners, and a verdict with the fix."""
    with guarded(as_json) as app:
        app.check_store()
        data = service.check(app, domain, _tenant_id(app, tenant))
        if as_json:
            emit_json(data)
            return
        data = clean_data(data)  # the summaries quote TXT records found in DNS
        console.print(Text(data["verdict"], style="bold green" if data["passes_dmarc"] else "bold red"))
        for part in ("spf", "dkim", "dmarc", "mx"):
            finding = data[part]
            console.print(Text(f"{part.upper():6} ", style="bold") + Text(finding["summary"], style="" if finding["ok"] else "yellow"))
            if finding["fix"]:
                console.print(f"       fix: {cell(finding['fix'])}", highlight=False)
        for partner in data["partners"]:
            console.print(cell(f"PARTNER {partner['verdict']}"), highlight=False)


@domain_cli.command("rotate-key")
def rotate_key(domain: str, wait: float = typer.Option(300, "--wait", help="Seconds to wait for the next key to resolve."),
               as_json: bool = JsonOpt) -> None:
    """Switch to the next DKIM key once it resolves; the tenant's DNS stays as it is."""
    with guarded(as_json) as app:
        app.check_store()
        data = service.rotate(app, domain, wait=wait)
        emit_json(data) if as_json else console.print(f"{data['domain']}: signing with {data['active']}, "
                                                      f"{data['retired']} retired (still published)")


@platform_cli.command("zone")
def platform_zone() -> None:
    """The platform zone's records (DKIM keys, return path MX and SPF) as a zone file."""
    with guarded(False) as app:
        app.check_store()
        print(service.zone(app), end="")


@platform_cli.command("publish")
def platform_publish() -> None:
    """Push the platform zone's records to DNS_UPDATE_SERVER (RFC 2136 UPDATE, TSIG-signed)."""
    with guarded(False) as app:
        app.check_store()
        console.print(f"published {service.publish_zone(app)} record sets to {app.settings.DNS_UPDATE_SERVER}")


@domain_cli.command("list")
def list_(tenant: Optional[str] = TenantOpt, as_json: bool = JsonOpt) -> None:
    """Sender domains (a tenant's, or every claim), with their state and when they were checked."""
    from ..domains import list_domains
    from ..tenants import tenant_names

    with guarded(as_json) as app:
        app.check_store()
        claims = list_domains(app.engine, tenant_id=_tenant_id(app, tenant))
        names = tenant_names(app.engine)
        data = [{**service.domain_json(app, d), "tenant": names.get(d.tenant_id)} for d in claims]
        if as_json:
            emit_json(data)
            return
        table = Table()
        for column in ("domain", "tenant", "state", "checked", "verified"):
            table.add_column(column)
        for d in data:
            table.add_row(cell(d["domain"]), cell(d["tenant"]), Text(d["state"], style=_STATUS.get(d["state"], "")),
                          d["checked_at"] or "never", d["verified_at"] or "")
        console.print(table)


@domain_cli.command("remove")
def remove(domain: str, tenant: str = typer.Option(..., "--tenant", help="The tenant whose claim is removed."),
           as_json: bool = JsonOpt) -> None:
    """Remove a sender domain: its keys are deleted and withdrawn from the platform zone."""
    with guarded(as_json) as app:
        app.check_store()
        data = service.remove(app, domain, get_tenant(app.engine, tenant).id)
        if as_json:
            emit_json(data)
            return
        how = "by DNS UPDATE" if data["withdrawn_by_update"] else "from 'postbote platform zone' (publish it again)"
        console.print(f"{cell(data['domain'])} removed; its keys are withdrawn {how}: "
                      + cell(", ".join(data["withdrawn"]) or "none"))
