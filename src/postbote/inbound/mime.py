"""A small, bounded MIME reader for bounces (RFC 2045, RFC 2046, RFC 5322).

The standard library's parser compares every line with every open boundary, so a message nested
a few thousand levels deep costs lines × depth, and its walk recurses until Python's limit. Reports
need far less: headers, the text of each part, and the headers of an attached original. This reader
works on at most ``MAX_READ`` bytes, descends at most ``MAX_DEPTH`` levels and ``MAX_PARTS`` parts,
and finds boundaries with ``str.find``: the work is linear in the input. It never raises on content.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re
from dataclasses import dataclass, field
from email.header import decode_header

MAX_READ = 2_000_000  # bytes of a message that are read at all; a notice is at its start
MAX_DEPTH = 8  # multipart and message/rfc822 levels (real reports use three)
MAX_PARTS = 64
MAX_HEADER = 64_000  # characters of one header block
_TYPE = re.compile(r"\s*([A-Za-z0-9_.+-]{1,64}/[A-Za-z0-9_.+-]{1,64})")
_PARAM = re.compile(r';\s*([A-Za-z0-9_.*-]{1,64})\s*=\s*("[^"]{0,1000}"|[^;\s]{0,1000})')


@dataclass(slots=True)
class Entity:
    headers: list[tuple[str, str]]
    content_type: str
    params: dict[str, str]
    body: str  # as transported (latin-1 view of the bytes), not decoded
    parts: list["Entity"] = field(default_factory=list)
    depth: int = 0

    def get(self, name: str, default: str = "") -> str:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    def text(self) -> str:
        """The body decoded (transfer encoding, then charset); for text parts."""
        return decode_body(self.body, self.get("content-transfer-encoding"), self.params.get("charset"))

    def walk(self, into_messages: bool = False):
        """This entity and its parts, depth first; attached messages only when asked."""
        stack = [self]
        while stack:
            entity = stack.pop()
            yield entity
            if entity.content_type == "message/rfc822" and not into_messages:
                continue
            stack.extend(reversed(entity.parts))


def read_message(raw: bytes) -> Entity:
    text = raw[:MAX_READ].decode("latin-1").replace("\r\n", "\n")
    counter = [0]
    return _entity(text, 0, counter)


def _entity(text: str, depth: int, counter: list[int]) -> Entity:
    counter[0] += 1
    head, body = _split_head(text)
    headers = parse_headers(head)
    ctype, params = _content_type(next((v for k, v in headers if k == "content-type"), ""))
    entity = Entity(headers, ctype, params, body, depth=depth)
    if depth >= MAX_DEPTH or counter[0] >= MAX_PARTS:
        return entity
    if ctype.startswith("multipart/"):
        chunks = _split_parts(body, params["boundary"]) if params.get("boundary") else []
        guessed = _guess_boundary(body) if not chunks else None
        if guessed:  # a boundary parameter that the delimiters do not match (edited, or missing)
            chunks = _split_parts(body, guessed)
        for chunk in chunks:
            if counter[0] >= MAX_PARTS:
                break
            entity.parts.append(_entity(chunk, depth + 1, counter))
    elif ctype in ("message/rfc822", "message/global", "text/rfc822-headers"):
        inner = decode_body(body, entity.get("content-transfer-encoding"), "latin-1") if ctype != "message/rfc822" else body
        entity.parts.append(_entity(inner.lstrip("\n"), depth + 1, counter))
    return entity


def _guess_boundary(body: str) -> str | None:
    """The delimiter the body itself uses: its first line that starts with two dashes."""
    for line in body[:20_000].split("\n", 200)[:200]:
        token = line.strip()
        if token.startswith("--") and 3 <= len(token) <= 72 and " " not in token:
            return token[2:]
    return None


def _split_head(text: str) -> tuple[str, str]:
    if text.startswith("\n"):
        return "", text[1:]
    end = text.find("\n\n", 0, MAX_HEADER)
    if end < 0:
        end = text.find("\n\n")
        if end < 0:
            return text[:MAX_HEADER], ""
        return text[:MAX_HEADER], text[end + 2:]
    return text[:end], text[end + 2:]


def parse_headers(head: str) -> list[tuple[str, str]]:
    """Header fields, unfolded (RFC 5322 §2.2.3), names lower-cased; lines that are no field end
    the block, as a lenient reader of broken notices must."""
    headers: list[tuple[str, str]] = []
    for line in head[:MAX_HEADER].split("\n"):
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            if len(value) < 8000:
                headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name or len(name) > 76 or " " in name:
            if headers:
                break
            continue
        headers.append((name.lower(), value.strip()))
    return headers


def _content_type(value: str) -> tuple[str, dict[str, str]]:
    found = _TYPE.match(value)
    main = found.group(1).lower() if found else "text/plain"
    params = {}
    for name, raw in _PARAM.findall(value[:4000]):
        params[name.lower()] = raw.strip('"')
    return main, params


def _split_parts(body: str, boundary: str) -> list[str]:
    """The parts between ``--boundary`` lines (RFC 2046 §5.1.1), found with str.find; a leading
    space before the delimiter, which some MTAs write, is tolerated. Every search starts where the
    last one ended, so a line full of near-delimiters is still read once."""
    delimiter = "--" + boundary
    chunks: list[str] = []
    position, start = 0, None
    while len(chunks) < MAX_PARTS:
        found = body.find(delimiter, position)
        if found < 0:
            break
        newline = body.rfind("\n", position, found)
        segment_start = newline + 1 if newline >= 0 else position
        at_line_start = (newline >= 0 or position == 0 or body[position - 1] == "\n") \
            and not body[segment_start:found].strip()
        after = found + len(delimiter)
        closing = body.startswith("--", after)
        if not at_line_start or not (closing or after == len(body) or body[after] in " \t\n"):
            position = after  # inside a line, or a longer boundary that starts with this one
            continue
        line_end = body.find("\n", after)
        line_end = len(body) if line_end < 0 else line_end
        if start is not None:
            chunks.append(body[start:max(start, segment_start - 1)])
        if closing:
            return chunks
        start = position = line_end + 1
    if start is not None and start < len(body):
        chunks.append(body[start:])
    return chunks


def decode_body(body: str, encoding: str, charset: str | None) -> str:
    data = body.encode("latin-1", "replace")
    encoding = (encoding or "").strip().lower()
    try:
        if encoding == "base64":
            data = base64.b64decode(re.sub(rb"[^A-Za-z0-9+/=]", b"", data) + b"==", validate=False)
        elif encoding == "quoted-printable":
            data = quopri.decodestring(data)
    except (binascii.Error, ValueError):
        pass
    return decode_bytes(data, charset)


# ISO-2022-JP (RFC 1468) shows itself by its escape sequences; Japanese MTAs often omit or misstate
# the charset of a 7-bit part that uses it.
_JIS_ESCAPES = (b"\x1b$B", b"\x1b$@", b"\x1b(J")


def decode_bytes(data: bytes, charset: str | None) -> str:
    charset = (charset or "utf-8").strip().strip('"').lower()
    if charset in ("utf-8", "us-ascii", "ascii", "iso-8859-1", "latin-1") and any(e in data for e in _JIS_ESCAPES):
        charset = "iso-2022-jp"
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    try:
        return data.decode(charset, "replace")
    except Exception:  # a codec that fails on its own input (iso-2022 variants do)
        return data.decode("utf-8", "replace")


def decode_words(value: str) -> str:
    """A header with RFC 2047 encoded words, as text; undecodable pieces stay as they are."""
    if "=?" not in value:
        return value
    try:
        return "".join(decode_bytes(part, charset) if isinstance(part, bytes) else part
                       for part, charset in decode_header(value[:2000]))
    except Exception:
        return value
