"""Bounces in prose: qmail, Exim, sendmail, Exchange, Lotus Notes, GroupWise, hosting panels and
the big providers' own notices. None follows a standard, but all say the same three things near
the top: which address failed, what the receiving server answered, and (often) a status code.

The notice is the text before the copy of the original message. Its addresses are the failed
recipients, minus the sender's own (the bounce's To, the original's From), the reporting
system's, and those the notice names as sender or alias source. Each recipient's diagnostic is the
text from its address up to the next recipient's."""

from __future__ import annotations

import re

from .mime import Entity, decode_words, parse_headers
from .text import addresses, lines, reply_code_in, squash, status_in

# Where the copy of the original message begins (Exim, qmail, sendmail, Notes, Exchange, webmail).
_ORIGINAL = re.compile(
    r"^\s*(-{2,}|={2,}|\*{2,}|_{2,}).{0,40}(original|copy|returned|unsent|undelivered|rejected|headers?\b|message follows)|"
    r"^\s*(original message follows|below this line is a copy|this is a copy of the message|"
    r"message headers? follows?|original message headers|the header of the original message|"
    r"original message:?\s*$|original message (details|as received|information))",
    re.IGNORECASE)
_HEADER_LINE = re.compile(r"^(received|return-path|message-id|dkim-signature|x-received|arc-seal):", re.IGNORECASE)
# Lines that name the sender or the address an alias came from, not a failed recipient.
_NOT_RECIPIENT = re.compile(r"message sent by|generated from|original sender|envelope.from|\bfrom:?\s*<|"
                            r"sender address|return.path|reply-to|^\s*from:|contact|assistance", re.IGNORECASE)
_NOT_RECIPIENT_ANYWHERE = re.compile(r"contact|assistance|message sent by|original sender|envelope.from|"
                                     r"return.path|reply-to", re.IGNORECASE)
_SYSTEM = re.compile(r"^(mailer-daemon|post_?master|mail-daemon|mailer|daemon|mdaemon|root|noreply|no-reply|"
                     r"bounces?|nobody)@", re.IGNORECASE)
BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status|failure|has failed|problem|notification|report)|failure notice|"
    r"returned mail|mail delivery failed|could not be delivered|delivery failed|non.?delivery|"
    r"nicht zustellbar|unzustellbar|non remis|non consegnat|no entregado|devuelto|mail failure|"
    r"warning: could not send|delayed mail|not delivered|rejected|bounce|error|failed|delivery warning|"
    r"配信|エラー|不達|返送", re.IGNORECASE)
_DELAY = re.compile(r"will (keep|continue) (trying|to try)|will (be )?retr|not (yet )?been delivered|delayed|"
                    r"still trying|warning:|deferred", re.IGNORECASE)
# The reporting system says it stopped trying: a failure, whatever the class of the last answer
# (RFC 3464 §2.3.3 "failed" with a transient status is an expiry, RFC 3463 §3.1).
_GAVE_UP = re.compile(r"not going to try again|(?<!will )(giving|gave|give) up|will not (be )?(retried|retry|try)|"
                      r"no (more|further) (attempts|retries)|permanent (fatal )?(error|failure)|in the queue too long|"
                      r"retry timeout exceeded|failing for a long time", re.IGNORECASE)
_QUOTES_REPLY = re.compile(r"^\s*(<<<\s*)?[245]\d\d[ -]|said:|reason:|\(#[245]\.\d", re.IGNORECASE)
_SUBJECT_REASON = re.compile(r"returned mail:\s*(.{1,200})", re.IGNORECASE)
_NO_REASON = re.compile(r"see transcript|^(returning message to sender|delivery failed)$", re.IGNORECASE)
_QUOTED_HEADER = re.compile(r"^\s*[*>-]?\s*(to|cc)\s*:", re.IGNORECASE)
_DSN_REPORTS = ("delivery-status", "global-delivery-status")
MAX_NOTICE = 64_000  # characters of notice text that are read


def looks_like_bounce(message: Entity) -> bool:
    sender = (addresses(message.get("from"), limit=1) or [""])[0]
    if _SYSTEM.match(sender) or message.get("x-failed-recipients"):
        return True
    if message.content_type == "multipart/report" and message.params.get("report-type", "").lower() in _DSN_REPORTS:
        return True  # RFC 6522 §3: a delivery report, even when its status part says nothing readable
    return bool(BOUNCE_SUBJECT.search(decode_words(message.get("subject"))))


def notice_text(message: Entity, rest: list[str] | None = None) -> str:
    """The text parts of the notice itself (not of attached messages), cut where the copy of
    the original starts; the lines after the cut go to ``rest`` when it is given."""
    chunks, size = [], 0
    for part in message.walk():
        if part.content_type in ("text/plain", "text/html") and size < MAX_NOTICE:
            text = part.text()
            if part.content_type == "text/html":
                text = _strip_tags(text)
            chunks.append(text[:MAX_NOTICE - size])
            size += len(chunks[-1])
    kept = []
    all_lines = lines("\n".join(chunks).replace("\r", ""))
    for number, line in enumerate(all_lines):
        line = line.lstrip("> ") if line.startswith(">") else line  # a bounce forwarded as a quote
        if kept and (_ORIGINAL.match(line) or _HEADER_LINE.match(line)):
            if rest is not None:
                rest.extend(all_lines[number + (0 if _HEADER_LINE.match(line) else 1):][:200])
            break
        kept.append(line)
    return "\n".join(kept)


def _strip_tags(html: str) -> str:
    text = re.sub(r"<br\s{0,5}/?>|</p>|</div>|</tr>", "\n", html[:MAX_NOTICE], flags=re.IGNORECASE)
    text = re.sub(r"<[^<>]{0,200}>", " ", text)
    return text.replace("&nbsp;", " ").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def read_prose(message: Entity, original: Entity | None) -> list[tuple[str, str, str | None, str]]:
    """(address, action, status, diagnostic) per failed recipient."""
    rest: list[str] = []
    notice = notice_text(message, rest)
    if original is None and rest:  # the original is inline after the notice, not attached
        original = Entity(parse_headers("\n".join(rest).strip("\n")), "text/plain", {}, "")
    excluded = _excluded(message, original)
    failed = [a for a in addresses(message.get("x-failed-recipients")) if a not in excluded]
    found = _recipients_in(notice, excluded) or _recipients_in(notice, _system_only(message))
    if failed:
        found = [(a, d) for a, d in found if a in failed] or [(a, "") for a in failed]
        found += [(a, "") for a in failed if a not in {f for f, _ in found}]
    if not found and original is not None:
        found = [(a, "") for a in addresses(original.get("to"), limit=5) if a not in excluded][:1]
    result = []
    for address, diagnostic in found:
        if len(found) == 1 and not (status_in(diagnostic) or reply_code_in(diagnostic)):
            diagnostic = _with_replies(diagnostic, notice)
            if not (status_in(diagnostic) or reply_code_in(diagnostic)):
                diagnostic = f"{diagnostic}\n{subject_reason(message)}".strip()
        result.append(_recipient(address, squash(diagnostic), notice))
    return result


def subject_reason(message: Entity) -> str:
    """The reason sendmail and its kin put in the subject ("Returned mail: User unknown"), for a
    notice whose own text gives none; a notice that only says "see transcript" gives nothing."""
    subject = decode_words(message.get("subject"))
    found = _SUBJECT_REASON.search(subject)
    reason = found.group(1).strip() if found else ""
    return "" if not reason or _NO_REASON.search(reason) else reason[:200]


def _with_replies(block: str, notice: str) -> str:
    """A lone recipient's own lines, and the lines of the notice that quote a server's reply
    (a transcript, "Remote host said: …"); the whole notice when there is neither."""
    quoted = [line for line in lines(notice) if _QUOTES_REPLY.search(line)][:4]
    own = [line for line in lines(block)[1:] if line.strip()]
    if not quoted and not own:
        return notice
    return "\n".join(quoted + own if quoted else lines(block))


def _excluded(message: Entity, original: Entity | None) -> set[str]:
    excluded = set(addresses(message.get("from"))) | set(addresses(message.get("to")))
    excluded |= set(addresses(message.get("reply-to")))
    if original is not None:
        for name in ("from", "return-path", "sender", "reply-to"):
            excluded |= set(addresses(original.get(name)))
    return excluded


def _system_only(message: Entity) -> set[str]:
    """When the only addresses in the notice are the sender's own, the sender wrote to itself."""
    return set(addresses(message.get("from")))


def _listed(line: str) -> list[str]:
    """The addresses a line lists: the first, and those after it separated by punctuation only;
    an address inside the reason that follows ("… may not follow x@y") is not another recipient."""
    found = addresses(line)
    if len(found) < 2:
        return found
    listed, lowered, position = [found[0]], line.lower(), lowered_end(line.lower(), found[0], 0)
    for address in found[1:]:
        at = lowered.find(address, position)
        if at < 0 or any(c.isalnum() for c in lowered[position:at]):
            break
        listed.append(address)
        position = at + len(address)
    return listed


def lowered_end(lowered: str, address: str, start: int) -> int:
    at = lowered.find(address, start)
    return at + len(address) if at >= 0 else start


def _recipients_in(notice: str, excluded: set[str]) -> list[tuple[str, str]]:
    found = _listed_recipients(notice, excluded)
    # A quoted "To:" or "Cc:" of the original names everyone it was sent to; when the notice lists
    # failed recipients of its own, those are the ones that failed.
    own = [(a, text) for a, text in found if not _QUOTED_HEADER.match(text.split("\n", 1)[0])]
    return own or found


def _listed_recipients(notice: str, excluded: set[str]) -> list[tuple[str, str]]:
    found: list[tuple[str, list[str]]] = []
    # An address the notice names as the sender's or as a help desk is none anywhere in it.
    excluded = excluded | {a for line in lines(notice) if _NOT_RECIPIENT_ANYWHERE.search(line) for a in addresses(line)}
    for line in lines(notice):
        here = [a for a in _listed(line) if a not in excluded and not _SYSTEM.match(a)]
        if here and not _NOT_RECIPIENT.search(line):
            known = {a for a, _ in found}
            new = [a for a in here if a not in known]
            if new:
                for address in new:
                    found.append((address, [line]))
                continue
        if found and len(found[-1][1]) < 12:
            found[-1][1].append(line)
    return [(address, "\n".join(text)) for address, text in found]


def _recipient(address: str, diagnostic: str, notice: str) -> tuple[str, str, str | None, str]:
    status = status_in(diagnostic) or status_in(squash(notice, 4000))
    if status and status[0] == "2":  # a version or serial number: a failure notice reports no success
        status = None
    code = reply_code_in(diagnostic)
    delayed = bool(_DELAY.search(notice[:4000])) and not (status or str(code or "")).startswith("5")
    if status is None and code is not None:
        status = f"{str(code)[0]}.0.0"
    transient = delayed or (status or "").startswith("4")
    action = "delayed" if transient and not _GAVE_UP.search(notice[:4000]) else "failed"
    return address, action, status or ("4.0.0" if action == "delayed" else "5.0.0"), diagnostic
