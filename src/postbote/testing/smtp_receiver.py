"""Scripted SMTP receivers on loopback (aiosmtpd): each decides its replies through a Script, so a
test can play a greylister, a server that is too busy, one that drops the line in the middle of
DATA, or one that knows only some of its users. Every message a receiver accepts is kept with
the client address it came from."""

from __future__ import annotations

import asyncio
import email
import threading
from dataclasses import dataclass

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

DROP = "drop"  # a Script.data answer: close the connection instead of replying


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    peer_ip: str
    mail_from: str
    recipients: tuple[str, ...]
    data: bytes

    @property
    def message_id(self) -> str:
        return email.message_from_bytes(self.data)["Message-ID"] or ""


@dataclass(frozen=True, slots=True)
class Stall:
    """A Script answer: wait ``seconds`` (the receiver stays silent), then give ``reply``."""

    seconds: float
    reply: str


class Script:
    """Default behaviour: accept everything. Override what a test needs. An answer may be a
    Stall; ``max_recipients`` makes RCPTs beyond it get 452 4.5.3 (RFC 5321 §4.5.3.1.10)."""

    max_recipients: int | None = None

    def greeting(self, peer_ip: str) -> str | None:
        """None: the usual 220. Else the reply to send before closing (e.g. a 421)."""
        return None

    def rcpt(self, peer_ip: str, mail_from: str, recipient: str) -> str:
        return "250 2.1.5 OK"

    def data(self, peer_ip: str, mail_from: str, recipients: list[str]) -> str:
        """The reply to the end of DATA, or DROP."""
        return "250 2.0.0 OK: queued"


class Greylister(Script):
    """postgrey's behaviour: the first attempt of a (client IP, sender, recipient) triplet gets a
    450, every later one is accepted."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str, str]] = set()
        self.lock = threading.Lock()

    def rcpt(self, peer_ip: str, mail_from: str, recipient: str) -> str:
        triplet = (peer_ip, mail_from.lower(), recipient.lower())
        with self.lock:
            if triplet in self.seen:
                return "250 2.1.5 OK"
            self.seen.add(triplet)
        return f"450 4.2.0 <{recipient}>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.test.html"


class _Handler:
    def __init__(self, receiver: "Receiver"):
        self.receiver = receiver

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options):
        limit = self.receiver.script.max_recipients
        if limit is not None and len(envelope.rcpt_tos) >= limit:
            return "452 4.5.3 Error: too many recipients"
        reply = await _unstall(self.receiver.script.rcpt(session.peer[0], envelope.mail_from or "", address))
        if reply.startswith(("250", "251")):  # RFC 5321 §3.4: 251 accepts and forwards
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope):
        reply = await _unstall(self.receiver.script.data(session.peer[0], envelope.mail_from or "",
                                                         list(envelope.rcpt_tos)))
        if reply == DROP:
            server.transport.close()
            return "250 2.0.0 never seen"
        if reply.startswith("250"):
            self.receiver.accepted(
                ReceivedMessage(session.peer[0], envelope.mail_from or "", tuple(envelope.rcpt_tos),
                                bytes(envelope.original_content or b""))
            )
        return reply


async def _unstall(answer):
    if isinstance(answer, Stall):
        await asyncio.sleep(answer.seconds)
        return answer.reply
    return answer


class _ScriptedSMTP(SMTP):
    def __init__(self, handler, receiver: "Receiver", **kwargs):
        super().__init__(handler, **kwargs)
        self._receiver = receiver

    async def _handle_client(self) -> None:
        reply = None
        if self._receiver.live:  # the controller's own readiness probe gets the plain greeting
            self._receiver.connected(self.session.peer[0])
            reply = self._receiver.script.greeting(self.session.peer[0])
        if reply is not None:
            await self.push(reply)
            self.transport.close()
            return
        await super()._handle_client()


class _Controller(Controller):
    def __init__(self, receiver: "Receiver", **kwargs):
        self._receiver = receiver
        super().__init__(_Handler(receiver), **kwargs)

    def factory(self):
        return _ScriptedSMTP(self.handler, self._receiver, **self.SMTP_kwargs)


class Receiver:
    """``with Receiver("127.0.0.10", port, Greylister()) as mx: ...; mx.messages``"""

    def __init__(self, host: str, port: int, script: Script | None = None, *, tls_context=None):
        self.host = host
        self.port = port
        self.script = script or Script()
        self.messages: list[ReceivedMessage] = []
        self.connections: list[str] = []  # the client address of every connection
        self.live = False
        self._lock = threading.Lock()
        kwargs = {"tls_context": tls_context} if tls_context else {}
        self._controller = _Controller(
            self, hostname=host, port=port, server_hostname=f"mx.{host}", data_size_limit=0,
            enable_SMTPUTF8=True, **kwargs,
        )

    def connected(self, peer_ip: str) -> None:
        with self._lock:
            self.connections.append(peer_ip)

    def accepted(self, message: ReceivedMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def start(self) -> "Receiver":
        self._controller.start()
        self.live = True
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> "Receiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
