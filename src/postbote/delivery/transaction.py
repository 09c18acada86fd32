"""Mail transactions on an open connection (RFC 5321 §3.3): MAIL, one RCPT per recipient, DATA.
Each recipient gets its own reply: the RCPT reply when it was refused, else the reply to the end
of DATA. A transaction never raises; a lost connection becomes a local reply for every recipient
still waiting for one.

A server that runs out of recipients per transaction answers ``452`` (RFC 5321 §4.5.3.1.10):
the recipients from there on go in the next transaction on the same connection, at once — it is
no rate limit and no reason to wait.

Each stage waits as long as RFC 5321 §4.5.3.2 says (settings ``SMTP_*_TIMEOUT``). After the end
of the data the message may already be delivered; a reply that never comes is recorded as
"possibly delivered" — the retry that follows may be a second copy, which is why that wait is
the longest."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import aiosmtplib

from ..replies import Reply
from ..settings import StageTimeouts
from .connection import Connection, protocol_error_text
from .transcript import Transcript


@dataclass(slots=True)
class TransactionResult:
    replies: dict[str, Reply]  # recipient → the reply that decides its fate
    transcript: Transcript
    connection_lost: bool


_TOO_MANY = re.compile(r"too many recipients", re.IGNORECASE)
_PER_PERIOD = re.compile(r"\b(per|this|an?)\s+(second|minute|hour|day)\b", re.IGNORECASE)


def too_many_recipients(reply: Reply) -> bool:
    """A 452 that ends this transaction's recipients, not one that says "slow down"."""
    if reply.code != 452:
        return False
    if _PER_PERIOD.search(reply.text):
        return False  # "too many recipients this hour" is a rate limit
    return reply.enhanced_code == "4.5.3" or bool(_TOO_MANY.search(reply.text))


class _Lost(Exception):
    def __init__(self, what: str):
        self.what = what


async def transact(conn: Connection, mail_from: str, recipients: list[str], raw: bytes,
                   timeouts: StageTimeouts) -> TransactionResult:
    """One message to ``recipients``: as many transactions as the server's recipient limit needs."""
    transcript = Transcript()
    replies: dict[str, Reply] = {}
    waiting = list(recipients)
    while waiting:
        later = await _one(conn, mail_from, waiting, raw, timeouts, transcript, replies)
        if later is None or len(later) == len(waiting):
            # Lost, or not one recipient accepted: the rest keep the reply they were given.
            break
        waiting = later
    return TransactionResult(replies, transcript, not conn.alive)


async def _one(conn: Connection, mail_from: str, recipients: list[str], raw: bytes, timeouts: StageTimeouts,
               transcript: Transcript, replies: dict[str, Reply]) -> list[str] | None:
    """One transaction. Returns the recipients left for the next one, or None when the
    connection is gone (every recipient without a reply then has a local one)."""
    smtp = conn.smtp
    stage = "MAIL FROM"
    try:
        transcript.sent(f"MAIL FROM:<{mail_from}>")
        reply = await smtp.execute_command(b"MAIL", f"FROM:<{mail_from}>".encode(), timeout=timeouts.command)
        transcript.received(reply.code, reply.message)
        if reply.code != 250:
            refused = Reply.from_smtp(reply.code, reply.message)
            for rcpt in recipients:
                replies[rcpt] = refused
            await _reset(smtp, transcript, timeouts)
            return [] if smtp.is_connected else None
        accepted: list[str] = []
        later: list[str] = []
        for n, rcpt in enumerate(recipients):
            stage = "RCPT TO"
            transcript.sent(f"RCPT TO:<{rcpt}>")
            reply = await smtp.execute_command(b"RCPT", f"TO:<{rcpt}>".encode(), timeout=timeouts.command)
            transcript.received(reply.code, reply.message)
            answer = Reply.from_smtp(reply.code, reply.message)
            if reply.code in (250, 251):
                accepted.append(rcpt)
            elif too_many_recipients(answer) and accepted:
                later = recipients[n:]  # RFC 5321 §4.5.3.1.10: the rest in another transaction
                for rest in later:
                    replies[rest] = answer  # kept only should the next transaction never happen
                transcript.note(f"{len(later)} recipient(s) left for the next transaction on this connection")
                break
            else:
                replies[rcpt] = answer
            if not smtp.is_connected:  # a 421 closes the session (RFC 5321 §3.8)
                raise aiosmtplib.SMTPServerDisconnected("closed after " + str(reply.code))
        if not accepted:
            await _reset(smtp, transcript, timeouts)
            return [] if smtp.is_connected else None
        stage = "DATA"
        final = await _data(conn, raw, timeouts, transcript)
        for rcpt in accepted:
            replies[rcpt] = final
        conn.transactions += 1
        if final.code != 250:
            await _reset(smtp, transcript, timeouts)
        return later if smtp.is_connected else None
    except _Lost as lost:
        smtp.close()
        return _all_lost(conn, recipients, replies, transcript, lost.what)
    except aiosmtplib.SMTPResponseException as exc:
        if exc.code != -1:
            raise
        smtp.close()
        return _all_lost(conn, recipients, replies, transcript,
                         f"protocol error: {conn.mx_host} [{conn.mx_ip}] {protocol_error_text(exc)} during {stage}",
                         plain=True)
    except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
        smtp.close()
        what = "timed out" if isinstance(exc, (asyncio.TimeoutError, aiosmtplib.SMTPTimeoutError)) else "connection lost"
        return _all_lost(conn, recipients, replies, transcript, f"{what} during {stage}")


def _all_lost(conn: Connection, recipients: list[str], replies: dict[str, Reply], transcript: Transcript,
              what: str, *, plain: bool = False) -> None:
    text = what if plain else f"{what} with {conn.mx_host} [{conn.mx_ip}]"
    lost = Reply.local(text)
    transcript.note(text)
    for rcpt in recipients:
        if rcpt not in replies or replies[rcpt].code in (250, 251) or too_many_recipients(replies[rcpt]):
            replies[rcpt] = lost
    return None


async def _data(conn: Connection, raw: bytes, timeouts: StageTimeouts, transcript: Transcript) -> Reply:
    """DATA, the message, and the reply to its end — each stage with its own timeout."""
    smtp = conn.smtp
    transcript.sent(f"DATA ({len(raw)} bytes)")
    try:
        start = await smtp.execute_command(b"DATA", timeout=timeouts.data)
    except (aiosmtplib.SMTPTimeoutError, asyncio.TimeoutError):
        raise _Lost("timed out waiting for 354 after DATA") from None
    if start.code != 354:
        transcript.received(start.code, start.message)
        return Reply.from_smtp(start.code, start.message)
    protocol = smtp.protocol
    if protocol is None or protocol.transport is None:
        raise _Lost("connection lost after DATA")
    payload = _dot_stuffed(raw)
    # The reply is awaited from before the first byte goes out, so that a fast one is never
    # missed: aiosmtplib drops what arrives while no reader waits. One turn of the loop lets the
    # reader start (on asyncio and uvloop alike) before the message is written.
    answer = asyncio.ensure_future(protocol.read_response(timeout=None))
    try:
        await asyncio.sleep(0)
        protocol.write(payload)
        await _sent(protocol.transport, timeouts.block)
        try:
            reply = await asyncio.wait_for(asyncio.shield(answer), timeouts.end)
        except asyncio.TimeoutError:
            raise _Lost(f"no reply within {timeouts.end:g} s after the end of the message "
                        "(possibly delivered; the retry may be a second copy)") from None
    except BaseException:
        answer.cancel()
        raise
    transcript.received(reply.code, reply.message)
    return Reply.from_smtp(reply.code, reply.message)


async def _sent(transport: asyncio.WriteTransport, block_timeout: float) -> None:
    """Wait while the receiver reads the message; give up when it takes in nothing for
    ``block_timeout`` seconds (RFC 5321 §4.5.3.2.5: 3 minutes per block)."""
    left = transport.get_write_buffer_size()
    quiet_since = asyncio.get_running_loop().time()
    while left:
        await asyncio.sleep(0.02)
        now_left = transport.get_write_buffer_size()
        now = asyncio.get_running_loop().time()
        if now_left < left:
            left, quiet_since = now_left, now
        elif now - quiet_since > block_timeout:
            raise _Lost(f"the receiver took no data for {block_timeout:g} s")
        if transport.is_closing():
            raise _Lost("connection lost while sending the message")


_PERIOD_LINE = re.compile(rb"(?m)^\.")


def _dot_stuffed(raw: bytes) -> bytes:
    """CRLF line ends, a leading dot doubled (RFC 5321 §4.5.2), the end-of-data line added."""
    data = re.sub(rb"\r\n|\r|\n", b"\r\n", raw)
    data = _PERIOD_LINE.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


async def _reset(smtp: aiosmtplib.SMTP, transcript: Transcript, timeouts: StageTimeouts) -> None:
    """RSET after a failed transaction, so the connection can carry the next message."""
    if not smtp.is_connected:
        return
    try:
        transcript.sent("RSET")
        reply = await smtp.execute_command(b"RSET", timeout=timeouts.command)
        transcript.received(reply.code, reply.message)
    except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
        smtp.close()
