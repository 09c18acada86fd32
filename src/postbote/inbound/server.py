"""The bounce and complaint receiver: an SMTP server on the return-path host. It accepts mail
only for the platform's return-path addresses — ``bounces+<message id>@`` the platform's
return-path host or a tenant's ``pbmail.`` host — and refuses everything else with a 5xx: it
never relays. Whatever arrives is parsed and recorded; nothing in it can take the server down."""

from __future__ import annotations

import asyncio
import logging
import re

from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from ..domains import find_domain
from ..domains.records import RETURN_PATH_LABEL
from ..settings import Settings, parse_host_port
from .apply import apply_report, message_exists
from .parse import parse_report

log = logging.getLogger("postbote.inbound")
_TOKEN = re.compile(r"^bounces\+([0-9a-f]{28})$")


class InboundHandler:
    def __init__(self, settings: Settings, engine: Engine):
        self.settings = settings
        self.engine = engine

    def token_of(self, address: str) -> str | None:
        """The message id in a return-path address of ours, or None."""
        local, _, host = address.lower().rpartition("@")
        match = _TOKEN.match(local)
        if not match:
            return None
        if host != self.settings.return_path_host:
            label, _, domain = host.partition(".")
            if label != RETURN_PATH_LABEL or find_domain(self.engine, domain) is None:
                return None
        return match.group(1) if message_exists(self.engine, match.group(1)) else None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        loop = asyncio.get_running_loop()
        token = await loop.run_in_executor(None, self.token_of, address)
        if token is None:
            return f"550 5.7.1 <{address}>: Recipient address rejected: not a return path of this system; no relaying"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.record, envelope.rcpt_tos, envelope.original_content or b"")
        except Exception:
            log.exception("recording an inbound report failed")
            return "451 4.3.0 Temporary failure, please try again"
        return "250 2.0.0 OK: report recorded"

    def record(self, recipients: list[str], raw: bytes) -> None:
        report = parse_report(raw)
        for address in recipients:
            token = self.token_of(address)
            if token:
                for change in apply_report(self.engine, token, report):
                    log.info("inbound %s: %s", token, change)
        if report.kind == "unreadable":
            log.warning("inbound report unreadable (%s)", report.note)


def start_inbound(settings: Settings, engine: Engine, listen: str | None = None) -> Controller:
    host, port = parse_host_port(listen or settings.INBOUND_LISTEN, default_port=25)
    controller = Controller(InboundHandler(settings, engine), hostname=host, port=port,
                            server_hostname=settings.bounce_mx, data_size_limit=settings.INBOUND_MAX_SIZE,
                            ident="Postbote bounce receiver")
    controller.start()
    return controller
