"""``postbote`` — set up, run, and send from the command line."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from ..compose import Draft
from ..db import upgrade
from ..db.engine import write_private
from ..domains import ensure_platform_keys
from ..domains.keys import require_secret_key
from ..durations import parse_duration
from ..errors import InputError
from ..explaining import explain_lines, explain_reply, message_story
from ..explaining import report as build_report
from ..sending import send as send_message
from ..sending import vault_for
from ..settings import config_path, load_settings
from .. import __version__
from ..tenants import add_tenant, get_tenant, list_tenants, set_sender_policy
from ..views import accepted_json, message_json
from . import render
from .admin import admin_cli, tenant_resume, tenant_settings, tenant_suspend
from .allowlist import allowlist
from .context import JsonOpt, guarded, run_async
from .keys import key_cli
from .output import cell, console, emit_json

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Postbote: notification e-mail that arrives.")
tenant_cli = typer.Typer(no_args_is_help=True, help="Tenants (customer companies) and their API keys.")
cli.add_typer(tenant_cli, name="tenant")
tenant_cli.add_typer(key_cli, name="key")
cli.command("allowlist")(allowlist)
cli.add_typer(admin_cli, name="admin")
tenant_cli.command("suspend")(tenant_suspend)
tenant_cli.command("resume")(tenant_resume)
tenant_cli.command("settings")(tenant_settings)


def _version(value: bool) -> None:
    if value:
        print(f"postbote {__version__}")
        raise typer.Exit()


@cli.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Postbote: notification e-mail that arrives."""

@cli.command()
def init() -> None:
    """Create or upgrade the database, and write postbote.toml when there is none."""
    with guarded(config_may_be_missing=True) as app:
        path = config_path()
        if not path.exists():
            write_private(path, render.config_file(app.settings).encode("utf-8"))  # it holds SECRET_KEY
            console.print(f"wrote {path}")
        upgrade(app.engine)
        console.print(f"database ready: {app.engine.url.render_as_string(hide_password=True)}")
        settings = load_settings()  # again: the config file may have just received SECRET_KEY
        if settings.SECRET_KEY:
            ensure_platform_keys(app.engine, vault_for(settings.SECRET_KEY))
            console.print("platform DKIM keys ready; publish them with 'postbote platform zone' or 'platform publish'")


@cli.command()
def worker(
    until_done: bool = typer.Option(False, "--until-done", help="Exit once nothing is queued or deferred."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Exit after this many seconds."),
    as_json: bool = JsonOpt,
) -> None:
    """Deliver queued mail, and re-check sender domains on schedule (no serve needed)."""
    from ..runtime import configure_logging, preflight, run_worker

    with guarded(as_json) as app:
        if app.settings.SECRET_KEY:  # a worker signs nothing, but a weak key given to it is still refused
            require_secret_key(app.settings.SECRET_KEY)
        preflight(app)
        configure_logging(app.settings.LOG_LEVEL)
        stats = run_async(run_worker(app, until_done=until_done, timeout=timeout))
        summary = {"claimed": stats.claimed, "outcomes": dict(stats.outcomes), "seconds": round(stats.seconds, 3)}
        if as_json:
            emit_json(summary)
        else:
            console.print(render.worker_summary(summary))


@cli.command()
def serve() -> None:
    """Run the REST API, a delivery worker, the domain re-checks (and the bounce receiver) in one process."""
    from ..runtime import bind_api_socket, configure_logging, preflight, run_serve

    with guarded() as app:
        require_secret_key(app.settings.SECRET_KEY)
        preflight(app)
        api_socket = bind_api_socket(*app.settings.api_host_port)
        configure_logging(app.settings.LOG_LEVEL)
        run_async(run_serve(app, api_socket, console.print))


@tenant_cli.command("add")
def tenant_add(
    name: str,
    display_name: Optional[str] = typer.Option(None, "--display-name", help='The company as recipients see it, e.g. "ACME GmbH".'),
    as_json: bool = JsonOpt,
) -> None:
    """Create a tenant."""
    with guarded(as_json) as app:
        app.check_store()
        tenant = add_tenant(app.engine, name, display_name)
        data = {"id": tenant.id, "name": tenant.name, "display_name": tenant.display_name}
        emit_json(data) if as_json else console.print(f"tenant {tenant.name} ({cell(tenant.display_name)}) created")


@tenant_cli.command("list")
def tenant_list(as_json: bool = JsonOpt) -> None:
    """Every tenant: name, display name, sender policy and how many API keys work."""
    with guarded(as_json) as app:
        app.check_store()
        rows = [{"id": t.id, "name": t.name, "display_name": t.display_name, "sender_policy": t.sender_policy.value,
                 "api_keys": keys} for t, keys in list_tenants(app.engine)]
        if as_json:
            emit_json(rows)
        else:
            console.print(render.tenants(rows))



@tenant_cli.command("policy")
def tenant_policy(name: str, policy: str = typer.Argument(..., help="fallback or hold"), as_json: bool = JsonOpt) -> None:
    """What happens when a tenant sends from a domain that is not verified: fallback or hold."""
    with guarded(as_json) as app:
        app.check_store()
        tenant = set_sender_policy(app.engine, get_tenant(app.engine, name), policy)
        data = {"tenant": tenant.name, "sender_policy": tenant.sender_policy.value}
        emit_json(data) if as_json else console.print(f"{tenant.name}: sender policy {tenant.sender_policy.value}")


@cli.command()
def send(
    tenant: str = typer.Option(..., "--tenant", help="Tenant name."),
    sender: str = typer.Option(..., "--from", help="From address, e.g. 'ACME HR <hr@acme.com>'."),
    to: list[str] = typer.Option([], "--to", help="Recipient; repeat for several. Each gets a copy of their own."),
    cc: list[str] = typer.Option([], "--cc", help="Copy recipient (shown in Cc: with --shared); repeat for several."),
    bcc: list[str] = typer.Option([], "--bcc", help="Blind copy: never in any header; repeat for several."),
    shared: bool = typer.Option(False, "--shared", help="One copy for all, To: and Cc: visible to everyone."),
    subject: str = typer.Option(..., "--subject"),
    text: str = typer.Option(..., "--text", help="Plain-text body."),
    html: Optional[str] = typer.Option(None, "--html", help="HTML body (sent as an alternative)."),
    reply_to: Optional[str] = typer.Option(None, "--reply-to"),
    as_json: bool = JsonOpt,
) -> None:
    """Queue a message; prints its id and each recipient's state."""
    with guarded(as_json) as app:
        app.check_store()
        accepted = send_message(
            app.engine, app.settings, get_tenant(app.engine, tenant),
            Draft(sender=sender, recipients=to, subject=subject, text=text, html=html, reply_to=reply_to,
                  cc=cc, bcc=bcc, shared=shared),
            resolver=app.resolver,
        )
        data = accepted_json(accepted)
        emit_json(data) if as_json else console.print(render.accepted(data))


LangOpt = typer.Option(None, "--lang", help="Language of explanations: de, en or es (default: LANGUAGE).")


@cli.command()
def status(message_id: str, lang: Optional[str] = LangOpt, as_json: bool = JsonOpt) -> None:
    """Each recipient's state and every delivery attempt with the server's reply."""
    with guarded(as_json) as app:
        app.check_store()
        data = message_json(*message_story(app.engine, app.settings, message_id, lang=lang))
        emit_json(data) if as_json else console.print(render.status(data))


@cli.command()
def explain(
    target: Optional[str] = typer.Argument(None, help="A message id, or - to read replies from standard input."),
    reply: Optional[str] = typer.Option(None, "--reply", help="A receiving server's reply, as pasted from a log."),
    mx: Optional[str] = typer.Option(None, "--mx", help="The MX host that gave the reply."),
    lang: Optional[str] = LangOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Why a message did not arrive, or what a server's reply means, and what to do."""
    with guarded(as_json) as app:
        if reply is not None:
            data = explain_reply(app.settings, reply, mx=mx, lang=lang)
            emit_json(data) if as_json else console.print(render.explained_reply(data))
        elif target == "-":
            write = sys.stdout.write
            for line in explain_lines(app.settings, sys.stdin, lang=lang):
                write(line + "\n")
        elif target:
            app.check_store()
            data = message_json(*message_story(app.engine, app.settings, target, lang=lang))
            emit_json(data) if as_json else console.print(render.story(data))
        else:
            raise InputError("Nothing to explain.", code="explain_nothing",
                             hint="Give a message id, --reply 'TEXT', or - to read replies from standard input.")


@cli.command()
def report(
    since: str = typer.Option("24h", "--since", help="How far back: 30m, 24h, 7d …"),
    tenant: Optional[str] = typer.Option(None, "--tenant", help="Only this tenant's messages."),
    as_json: bool = JsonOpt,
) -> None:
    """Outcomes by destination and reason, and how helpful explanations were rated."""
    with guarded(as_json) as app:
        app.check_store()
        try:
            seconds = parse_duration(since)
        except ValueError as exc:
            raise InputError(str(exc), code="duration_invalid", hint="Write e.g. 30m, 24h or 7d.") from None
        tenant_id = get_tenant(app.engine, tenant).id if tenant else None
        data = build_report(app.engine, since=seconds, tenant_id=tenant_id)
        emit_json(data) if as_json else console.print(render.report(data))


def main() -> None:
    from .domains import domain_cli, platform_cli
    from .inbound import inbound_cli
    from .messages import message_cli
    from .recipients import address_cli, suppression_cli
    from .partners import partner_cli
    from .workflows import event_cli, workflow_cli

    cli.add_typer(partner_cli, name="partner")
    cli.add_typer(event_cli, name="event")
    cli.add_typer(workflow_cli, name="workflow")
    cli.add_typer(domain_cli, name="domain")
    cli.add_typer(platform_cli, name="platform")
    cli.add_typer(address_cli, name="address")
    cli.add_typer(suppression_cli, name="suppression")
    cli.add_typer(inbound_cli, name="inbound")
    cli.add_typer(message_cli, name="message")
    cli()
