"""Opening an SMTP connection to a destination: the MX hosts by preference, each of their
addresses in turn (RFC 5321 §5.1), from the destination's source IP, then EHLO (HELO when EHLO
is refused) and STARTTLS as TLS_MODE says."""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass, field

import aiosmtplib

from ..dns import DnsTemporaryError, MxHost, Resolver
from ..network import not_public
from ..replies import Reply
from ..settings import Settings
from ..vocab import TlsMode
from .transcript import Transcript


@dataclass(slots=True)
class Connection:
    smtp: aiosmtplib.SMTP
    mx_host: str
    mx_ip: str
    source_ip: str | None
    tls: bool
    preamble: Transcript
    transactions: int = 0

    @property
    def alive(self) -> bool:
        return self.smtp.is_connected

    async def close(self) -> None:
        if self.smtp.is_connected:
            try:
                await self.smtp.quit(timeout=5)
            except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
                self.smtp.close()


@dataclass(slots=True)
class ConnectFailure:
    """No MX host could be used. ``reply`` is the most telling answer: a server's own reply when
    one was given, else what went wrong locally."""

    reply: Reply
    transcript: Transcript
    mx_host: str | None = None
    mx_ip: str | None = None
    tried: list[str] = field(default_factory=list)


def tls_context() -> ssl.SSLContext:
    """Opportunistic TLS towards MX hosts: encrypt, do not authenticate. Most MX certificates do
    not name the MX host (RFC 7672 §1.3 explains why unauthenticated TLS is still worth it)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def verified_tls_context(ca_file: str = "") -> ssl.SSLContext:
    """TLS_MODE=verify: the certificate must chain to a trusted authority (the system's, or
    TLS_CA_FILE) and name the MX host (RFC 6125) — what MTA-STS (RFC 8461 §4.2) asks for."""
    context = ssl.create_default_context(cafile=ca_file or None)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


_MUST_ENCRYPT = (TlsMode.REQUIRED, TlsMode.VERIFY)


class Connector:
    def __init__(self, settings: Settings, resolver: Resolver):
        self._settings = settings
        self._resolver = resolver
        if settings.TLS_MODE is TlsMode.OFF:
            self._tls_context = None
        elif settings.TLS_MODE is TlsMode.VERIFY:
            self._tls_context = verified_tls_context(settings.TLS_CA_FILE)
        else:
            self._tls_context = tls_context()
        # Hosts whose TLS handshake failed; in opportunistic mode they get plain text next time,
        # as Postfix does, rather than never getting mail.
        self._tls_broken: set[str] = set()

    async def open(self, hosts: tuple[MxHost, ...], source_ip: str | None) -> Connection | ConnectFailure:
        transcript = Transcript()
        best: ConnectFailure | None = None
        tried: list[str] = []
        for mx in hosts:
            try:
                ips = await self._resolver.addresses(mx.host)
            except DnsTemporaryError as exc:
                transcript.note(str(exc))
                best = _better(best, ConnectFailure(Reply.local(str(exc)), transcript, mx.host))
                continue
            if not ips:
                note = f"MX host {mx.host} has no address"
                transcript.note(note)
                best = _better(best, ConnectFailure(Reply.local(note), transcript, mx.host))
                continue
            for ip in ips:
                refused = self._refused_address(ip)
                if refused:
                    note = f"not connecting to {mx.host} [{ip}]: {refused}"
                    transcript.note(note)
                    best = _better(best, ConnectFailure(Reply.local(note), transcript, mx.host, ip))
                    continue
                tried.append(f"{mx.host}[{ip}]")
                outcome = await self._open_one(mx.host, ip, source_ip, transcript)
                if isinstance(outcome, Connection):
                    return outcome
                best = _better(best, outcome)
        if best is None:
            best = ConnectFailure(Reply.local("no mail exchanger to try"), transcript)
        best.transcript = transcript
        best.tried = tried
        return best

    async def _open_one(
        self, host: str, ip: str, source_ip: str | None, transcript: Transcript, *, allow_tls: bool = True
    ) -> Connection | ConnectFailure:
        s = self._settings
        timeouts = s.smtp_timeouts
        origin = f" from {source_ip}" if source_ip else ""
        transcript.note(f"connecting to {host} [{ip}]:{s.SMTP_PORT}{origin}")
        try:
            sock = await _tcp_connect(ip, s.SMTP_PORT, source_ip, timeouts.connect)
        except (OSError, asyncio.TimeoutError) as exc:
            text = f"cannot connect to {host} [{ip}]: {_describe(exc)}"
            transcript.note(text)
            return ConnectFailure(Reply.local(text), transcript, host, ip)
        smtp = aiosmtplib.SMTP(
            hostname=ip,
            sock=sock,
            local_hostname=s.helo_name,
            timeout=timeouts.command,
            start_tls=False,
            validate_certs=False,
        )
        try:
            greeting = await smtp.connect(timeout=timeouts.greeting)
        except aiosmtplib.SMTPConnectResponseError as exc:
            transcript.received(exc.code, exc.message)
            smtp.close()
            if exc.code >= 500:
                # Postfix's default (smtp_skip_5xx_greeting = yes): a server that refuses the session
                # before it has heard anything refuses the connection, not this message — often a
                # front end that is overloaded, misconfigured, or rejecting this client's address.
                # Its words say nothing about the recipients, so the next MX is tried and, when none
                # takes the session, the delivery is deferred (the lifetime bounds it), not bounced.
                text = (f"{host} [{ip}] refused the session at its greeting: {exc.code} {' '.join(exc.message.split())}"
                        "; trying the next MX host or again later, as Postfix does (smtp_skip_5xx_greeting)")
                return ConnectFailure(Reply.local(text), transcript, host, ip)
            return ConnectFailure(Reply.from_smtp(exc.code, exc.message), transcript, host, ip)
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            if _protocol_error(exc):
                return self._broken(smtp, host, ip, transcript, exc, "the greeting")
            text = f"cannot connect to {host} [{ip}]: {_describe(exc)} waiting for the greeting"
            transcript.note(text)
            smtp.close()
            return ConnectFailure(Reply.local(text), transcript, host, ip)
        transcript.received(greeting.code, greeting.message)
        failure = await self._hello(smtp, host, ip, transcript)
        if failure:
            return failure
        tls = False
        if self._tls_context and allow_tls and smtp.supports_extension("starttls") and host not in self._tls_broken:
            tls_outcome = await self._starttls(smtp, host, ip, transcript)
            if isinstance(tls_outcome, ConnectFailure):
                if s.TLS_MODE is TlsMode.OPPORTUNISTIC:
                    self._tls_broken.add(host)
                    transcript.note("TLS failed; retrying this host without TLS (opportunistic)")
                    return await self._open_one(host, ip, source_ip, transcript, allow_tls=False)
                return tls_outcome
            tls = True
        if not tls and s.TLS_MODE in _MUST_ENCRYPT:
            smtp.close()
            text = f"{host} [{ip}] does not offer STARTTLS and TLS_MODE is {s.TLS_MODE.value}"
            transcript.note(text)
            return ConnectFailure(Reply.local(text), transcript, host, ip)
        return Connection(smtp, host, ip, source_ip, tls, Transcript(list(transcript.lines)))

    async def _hello(self, smtp: aiosmtplib.SMTP, host: str, ip: str, transcript: Transcript) -> ConnectFailure | None:
        try:
            transcript.sent(f"EHLO {self._settings.helo_name}")
            reply = await smtp.ehlo()
            transcript.received(reply.code, reply.message.split("\n")[0])
            return None
        except aiosmtplib.SMTPHeloError as exc:
            transcript.received(exc.code, exc.message)
            if exc.code >= 500 and smtp.is_connected:
                try:
                    transcript.sent(f"HELO {self._settings.helo_name}")
                    reply = await smtp.helo()
                    transcript.received(reply.code, reply.message)
                    return None
                except aiosmtplib.SMTPHeloError as again:
                    transcript.received(again.code, again.message)
                    exc = again
                except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as lost:
                    return self._lost(smtp, host, ip, transcript, lost, "HELO")
            smtp.close()
            return ConnectFailure(Reply.from_smtp(exc.code, exc.message), transcript, host, ip)
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            return self._lost(smtp, host, ip, transcript, exc, "EHLO")

    async def _starttls(self, smtp: aiosmtplib.SMTP, host: str, ip: str, transcript: Transcript) -> ConnectFailure | None:
        transcript.sent("STARTTLS")
        try:
            # server_hostname: SNI, and the name TLS_MODE=verify checks the certificate against.
            reply = await smtp.starttls(tls_context=self._tls_context, server_hostname=host)
        except aiosmtplib.SMTPResponseException as exc:
            transcript.received(exc.code, exc.message)
            smtp.close()
            return ConnectFailure(Reply.from_smtp(exc.code, exc.message), transcript, host, ip)
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
            return self._lost(smtp, host, ip, transcript, exc, "STARTTLS")
        transcript.received(reply.code, reply.message)
        transcript.note("TLS established")
        # RFC 3207 §4.2: the session starts over after the handshake; EHLO again.
        return await self._hello(smtp, host, ip, transcript)

    def _refused_address(self, ip: str) -> str | None:
        """Why delivery must not connect to ``ip``: an MX record pointing into the platform's own
        networks (loopback, private, link-local …) would let anyone who controls a domain's DNS
        make Postbote talk to internal hosts and show their banners in transcripts."""
        if self._settings.ALLOW_PRIVATE_MX:
            return None
        why = not_public(ip)
        return f"{why} and ALLOW_PRIVATE_MX is off" if why and why != "not an IP address" else why

    @classmethod
    def _lost(cls, smtp, host, ip, transcript: Transcript, exc: BaseException, during: str) -> ConnectFailure:
        if _protocol_error(exc):
            return cls._broken(smtp, host, ip, transcript, exc, during)
        smtp.close()
        text = f"{host} [{ip}]: {_describe(exc)} during {during}"
        transcript.note(text)
        return ConnectFailure(Reply.local(text), transcript, host, ip)


    @staticmethod
    def _broken(smtp, host, ip, transcript: Transcript, exc: BaseException, during: str) -> ConnectFailure:
        smtp.close()
        text = f"protocol error: {host} [{ip}] {protocol_error_text(exc)} during {during}"
        transcript.note(text)
        return ConnectFailure(Reply.local(text), transcript, host, ip)


async def _tcp_connect(ip: str, port: int, source_ip: str | None, timeout: float) -> socket.socket:
    """The TCP connection alone, under SMTP_CONNECT_TIMEOUT; the greeting has its own timeout."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        if source_ip:
            sock.bind((source_ip, 0))
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (ip, port)), timeout)
    except BaseException:
        sock.close()
        raise
    return sock


def _protocol_error(exc: BaseException) -> bool:
    """aiosmtplib's code -1: a reply line without a code, or one too long (RFC 5321 §4.2)."""
    return isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code == -1


def protocol_error_text(exc: BaseException) -> str:
    message = getattr(exc, "message", str(exc))
    if message.startswith("Malformed SMTP response line:"):
        line = " ".join(message.split(":", 1)[1].split())[:200]
        return f"answered with a line that is no SMTP reply (no code): {line!r}"
    return f"broke the protocol: {' '.join(message.split())[:200]}"


def _better(current: ConnectFailure | None, new: ConnectFailure) -> ConnectFailure:
    """Keep the server's own words over a local error: '421 too busy' says more than 'refused'."""
    if current is None or (current.reply.code is None and new.reply.code is not None):
        return new
    return current


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, ConnectionRefusedError) or isinstance(cause, ConnectionRefusedError) \
            or "refused" in str(exc).lower() or "errno 111" in str(exc).lower():
        return "connection refused"
    if isinstance(exc, (asyncio.TimeoutError, aiosmtplib.SMTPTimeoutError)):
        return "timed out"
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return "connection lost"
    return str(exc) or exc.__class__.__name__
