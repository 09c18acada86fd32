"""``postbote allowlist``: the kit an IT team needs to let the platform's mail through."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from ..allowlist import FORMATS, build_kit, render
from ..tenants import get_tenant
from .context import guarded, run_async


def allowlist(
    tenant: Optional[str] = typer.Option(None, "--tenant", help="Name the tenant's verified domains and partners."),
    fmt: str = typer.Option("text", "--format", help=f"One of: {', '.join(FORMATS)}."),
    lang: Optional[str] = typer.Option(None, "--lang", help="de, en or es (default: LANGUAGE)."),
) -> None:
    """Print the allowlist kit: sending addresses, partners' hosts resolved now, signing domains,
    and the rule that trusts authenticated mail, for Microsoft 365, Google Workspace, Postfix,
    Exim, SPF, or as text, JSON or CSV."""
    with guarded(fmt == "json") as app:
        app.check_store()
        chosen = get_tenant(app.engine, tenant) if tenant else None
        kit = run_async(build_kit(app.engine, app.resolver, app.settings,
                                  tenant_id=chosen.id if chosen else None,
                                  tenant_name=chosen.display_name if chosen else None))
        sys.stdout.write(render(kit, fmt, lang or app.settings.LANGUAGE))
