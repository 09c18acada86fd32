"""``postbote message …``: finding messages (and, for held ones, releasing or cancelling them)."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from ..holding import cancel, release
from ..queue import MAX_PAGE, list_messages
from ..tenants import get_tenant
from ..views import message_page_json
from .context import JsonOpt, guarded
from .output import console, emit_json
from .render import state_text

message_cli = typer.Typer(no_args_is_help=True, help="Messages: find them by recipient and state.")


@message_cli.command("list")
def list_command(
    tenant: Optional[str] = typer.Option(None, "--tenant", help="Only this tenant's messages."),
    recipient: Optional[str] = typer.Option(None, "--recipient", help="Only messages to an address containing this."),
    state: Optional[str] = typer.Option(None, "--state", help="Only messages with a recipient in this state."),
    limit: int = typer.Option(50, "--limit", help=f"Messages per page (1–{MAX_PAGE})."),
    cursor: Optional[str] = typer.Option(None, "--cursor", help="Where the previous page ended (its next cursor)."),
    as_json: bool = JsonOpt,
) -> None:
    """Messages, newest first, with each recipient's state."""
    with guarded(as_json) as app:
        app.check_store()
        tenant_id = get_tenant(app.engine, tenant).id if tenant else None
        data = message_page_json(list_messages(app.engine, tenant_id=tenant_id, recipient=recipient, state=state,
                                               limit=limit, cursor=cursor))
        if as_json:
            emit_json(data)
            return
        table = Table()
        for column in ("id", "created", "tenant", "subject", "recipients"):
            table.add_column(column, no_wrap=column in ("id", "created", "tenant"))
        for m in data["messages"]:
            people = Text("\n").join(Text(f"{r['address']} ") + state_text(r["state"]) for r in m["recipients"])
            table.add_row(m["id"], m["created_at"], m["tenant"], m["subject"], people)
        console.print(table)
        if not data["messages"]:
            console.print("no messages")
        if data["next_cursor"]:
            console.print(f"more: --cursor {data['next_cursor']}", highlight=False)


@message_cli.command("release")
def release_command(message_id: str, as_json: bool = JsonOpt) -> None:
    """Send a held message now; its sender is chosen again at this moment."""
    with guarded(as_json) as app:
        app.check_store()
        done = release(app.engine, app.settings, message_id)
        data = {"id": done.id, "released": done.released, "sender": {"used": done.sender, "note": done.note}}
        if as_json:
            emit_json(data)
        else:
            console.print(f"message {done.id} released: {len(done.released)} recipient(s) queued, from {done.sender}"
                          + (f" — {done.note}" if done.note else ""), highlight=False)


@message_cli.command("cancel")
def cancel_command(message_id: str, as_json: bool = JsonOpt) -> None:
    """Never send what has not left yet: held, queued and deferred recipients are cancelled."""
    with guarded(as_json) as app:
        app.check_store()
        cancelled = cancel(app.engine, message_id)
        if as_json:
            emit_json({"id": message_id, "cancelled": cancelled})
        else:
            console.print(f"message {message_id}: {len(cancelled)} recipient(s) cancelled", highlight=False)
