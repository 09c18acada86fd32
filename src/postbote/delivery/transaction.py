"""One mail transaction on an open connection (RFC 5321 §3.3): MAIL, one RCPT per recipient,
DATA. Each recipient gets its own reply: the RCPT reply when it was refused, else the reply to
the end of DATA. A transaction never raises; a lost connection becomes a local reply for every
recipient still waiting for one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiosmtplib

from ..replies import Reply
from .connection import Connection
from .transcript import Transcript


@dataclass(slots=True)
class TransactionResult:
    replies: dict[str, Reply]  # recipient → the reply that decides its fate
    transcript: Transcript
    connection_lost: bool


async def transact(conn: Connection, mail_from: str, recipients: list[str], raw: bytes) -> TransactionResult:
    transcript = Transcript()
    replies: dict[str, Reply] = {}
    smtp = conn.smtp
    stage = "MAIL FROM"
    try:
        transcript.sent(f"MAIL FROM:<{mail_from}>")
        reply = await smtp.execute_command(b"MAIL", f"FROM:<{mail_from}>".encode())
        transcript.received(reply.code, reply.message)
        if reply.code != 250:
            refused = Reply.from_smtp(reply.code, reply.message)
            await _reset(smtp, transcript)
            return TransactionResult({r: refused for r in recipients}, transcript, not smtp.is_connected)
        accepted: list[str] = []
        for rcpt in recipients:
            stage = "RCPT TO"
            transcript.sent(f"RCPT TO:<{rcpt}>")
            reply = await smtp.execute_command(b"RCPT", f"TO:<{rcpt}>".encode())
            transcript.received(reply.code, reply.message)
            if reply.code in (250, 251):
                accepted.append(rcpt)
            else:
                replies[rcpt] = Reply.from_smtp(reply.code, reply.message)
            if not smtp.is_connected:  # a 421 closes the session (RFC 5321 §3.8)
                raise aiosmtplib.SMTPServerDisconnected("closed after " + str(reply.code))
        if not accepted:
            await _reset(smtp, transcript)
            return TransactionResult(replies, transcript, not smtp.is_connected)
        stage = "DATA"
        transcript.sent(f"DATA ({len(raw)} bytes)")
        try:
            reply = await smtp.data(raw)
            final = Reply.from_smtp(reply.code, reply.message)
        except aiosmtplib.SMTPDataError as exc:
            final = Reply.from_smtp(exc.code, exc.message)
        transcript.received(final.code or 0, final.text)
        for rcpt in accepted:
            replies[rcpt] = final
        conn.transactions += 1
        if final.code != 250:
            await _reset(smtp, transcript)
        return TransactionResult(replies, transcript, not smtp.is_connected)
    except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
        smtp.close()
        what = "timed out" if isinstance(exc, (asyncio.TimeoutError, aiosmtplib.SMTPTimeoutError)) else "connection lost"
        lost = Reply.local(f"{what} during {stage} with {conn.mx_host} [{conn.mx_ip}]")
        transcript.note(lost.text)
        for rcpt in recipients:
            replies.setdefault(rcpt, lost)
        return TransactionResult(replies, transcript, True)


async def _reset(smtp: aiosmtplib.SMTP, transcript: Transcript) -> None:
    """RSET after a failed transaction, so the connection can carry the next message."""
    if not smtp.is_connected:
        return
    try:
        transcript.sent("RSET")
        reply = await smtp.rset()
        transcript.received(reply.code, reply.message)
    except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
        smtp.close()
