"""Log lines that input cannot forge. Messages quote addresses, replies and report text, any of
which may carry CR, LF or other control characters meant to start a fake line ("…\\n2026-… INFO
domain acme.com: verified"). The formatter escapes them in the message, and indents every line
of a traceback, so each record is one line that starts with its own time stamp."""

from __future__ import annotations

import logging
import re
from typing import IO

_CONTROL = re.compile("[\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def escape_controls(text: str) -> str:
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class SafeFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def formatException(self, ei) -> str:  # noqa: N802
        return "\n".join("    | " + escape_controls(line) for line in super().formatException(ei).splitlines())

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return "\n".join("    | " + escape_controls(line) for line in stack_info.splitlines())


def configure(level: str, stream: IO[str] | None = None) -> None:
    """Postbote's logging: one handler on the root logger, every line through SafeFormatter."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter(FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: lines per connection, a flood can fill a disk
