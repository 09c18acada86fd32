"""Finding the Debian-packaged servers the tests run (their daemons live in /usr/sbin, which a
normal user's PATH may lack)."""

from __future__ import annotations

import os
import shutil


def sbin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    path = f"/usr/sbin/{name}"
    return path if os.path.exists(path) else None
