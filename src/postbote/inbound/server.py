"""The bounce and complaint receiver: an SMTP server on the return-path host. It accepts mail
only for the platform's return-path addresses — ``bounces+<message id>.<day>.<mac>@`` the
platform's return-path host or a tenant's ``pbmail.`` host, with a MAC only the platform can make
(``domains/returnpath.py``) — and refuses everything else with the same 5xx, whether the id is
unknown, forged or too old: it never relays and never tells which messages exist. Whatever
arrives is parsed (in a worker thread, off the event loop) and recorded; nothing in it can take
the server down. It also takes mail for ``unsubscribe@`` the platform's return-path host: the
mailto: of one-click unsubscribe (RFC 8058), whose token travels in the subject."""

from __future__ import annotations

import asyncio
import logging
from email.parser import BytesHeaderParser
from email.policy import compat32

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from sqlalchemy import Engine

from ..domains import find_domain
from ..domains.records import RETURN_PATH_LABEL
from ..domains.returnpath import message_of
from ..errors import NotFoundError
from ..settings import Settings, parse_host_port
from ..workflows import UNSUBSCRIBE_LOCAL_PART, unsubscribe
from .apply import apply_report, message_exists
from .parse import parse_report

log = logging.getLogger("postbote.inbound")
REFUSED = "550 5.7.1 Recipient address rejected: not a return path of this system; no relaying"


class InboundHandler:
    def __init__(self, settings: Settings, engine: Engine):
        self.settings = settings
        self.engine = engine

    def token_of(self, address: str) -> str | None:
        """The message id in a return-path address of ours whose MAC and day hold, or None.
        The store is not asked whether the message exists: the answer must not depend on it."""
        local, _, host = address.lower().rpartition("@")
        message_id = message_of(self.settings.SECRET_KEY, local)
        if message_id is None:
            return None
        if host != self.settings.return_path_host:
            label, _, domain = host.partition(".")
            if label != RETURN_PATH_LABEL or find_domain(self.engine, domain) is None:
                return None
        return message_id

    def is_unsubscribe(self, address: str) -> bool:
        """The mailto: of one-click unsubscribe (RFC 8058), announced in bulk mail's header."""
        return address.lower() == f"{UNSUBSCRIBE_LOCAL_PART}@{self.settings.return_path_host}"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if len(envelope.rcpt_tos) >= self.settings.INBOUND_MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"  # RFC 5321 §4.5.3.1.10: the client sends the rest later
        if self.is_unsubscribe(address):
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"
        loop = asyncio.get_running_loop()
        token = await loop.run_in_executor(None, self.token_of, address)
        if token is None:
            # One answer for every refusal, the address not echoed: nothing to learn from it.
            return REFUSED
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
        if any(self.is_unsubscribe(a) for a in recipients):
            self.unsubscribe(raw)
            recipients = [a for a in recipients if not self.is_unsubscribe(a)]
            if not recipients:
                return
        report = parse_report(raw)
        for address in recipients:
            token = self.token_of(address)
            if token and message_exists(self.engine, token):
                for change in apply_report(self.engine, token, report):
                    log.info("inbound %s: %s", token, change)
            elif token:
                log.warning("inbound report for message %s, which is no longer stored: ignored", token)
        if report.kind == "unreadable":
            log.warning("inbound report unreadable (%s)", report.note)

    def unsubscribe(self, raw: bytes) -> None:
        """The token travels in the subject the mailto: link sets; a forged one changes nothing."""
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:65536])
        subject = " ".join(str(headers.get("Subject", "")).split())
        word, _, token = subject.rpartition(" ")
        try:
            item = unsubscribe(self.engine, self.settings.SECRET_KEY, token if word.lower().endswith("unsubscribe") else "")
        except NotFoundError:
            log.warning("unsubscribe by mail with an invalid token ignored")
            return
        log.info("unsubscribed by mail: tenant %s, workflow %s", item.tenant_id, item.workflow_id)


class _Slots:
    """Connections being served; touched only from the receiver's own event loop thread."""

    def __init__(self, size: int):
        self.size, self.used = size, 0


class _LimitedSMTP(SMTP):
    """aiosmtpd's server with a ceiling on connections: one over it is told 421 and closed at
    once, so a flood of idle connections costs a moment each, not a file descriptor each — the
    API and the delivery worker share the process and its descriptors."""

    def __init__(self, handler, *, slots: _Slots, **kwargs):
        super().__init__(handler, **kwargs)
        self._slots = slots
        self._counted = False

    def connection_made(self, transport) -> None:
        if not self._counted and self.transport is None:  # a new connection, not one after STARTTLS
            if self._slots.used >= self._slots.size:
                transport.write(b"421 4.7.0 Too many connections; try again later\r\n")
                transport.close()
                return
            self._slots.used += 1
            self._counted = True
        super().connection_made(transport)

    def connection_lost(self, error) -> None:
        if not self._counted:
            return
        self._counted = False
        self._slots.used -= 1
        super().connection_lost(error)

    def eof_received(self):
        return super().eof_received() if self._counted else False


class _Controller(Controller):
    def __init__(self, handler, *, max_connections: int, **kwargs):
        super().__init__(handler, **kwargs)
        self.slots = _Slots(max_connections)

    def factory(self):
        return _LimitedSMTP(self.handler, slots=self.slots, **self.SMTP_kwargs)


def start_inbound(settings: Settings, engine: Engine, listen: str | None = None) -> Controller:
    host, port = parse_host_port(listen or settings.INBOUND_LISTEN, default_port=25)
    controller = _Controller(InboundHandler(settings, engine), hostname=host, port=port,
                             server_hostname=settings.bounce_mx, data_size_limit=settings.INBOUND_MAX_SIZE,
                             ident="Postbote bounce receiver", max_connections=settings.INBOUND_MAX_CONNECTIONS,
                             server_kwargs={"timeout": settings.INBOUND_IDLE_TIMEOUT})
    controller.start()
    return controller
