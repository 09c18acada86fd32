"""A real authoritative DNS server for tests: Knot DNS (Debian package ``knot``), started in the
foreground with its configuration, zones and database in a temporary folder, answering on
loopback, accepting RFC 2136 updates signed with a TSIG key."""

from __future__ import annotations

import base64
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import dns.message
import dns.query

from .binaries import sbin
from .dns_server import _free_port


def knotd_path() -> str | None:
    return sbin("knotd")


class KnotServer:
    """``with KnotServer(["platform.test", "acme.test"]) as knot: knot.address, knot.tsig``"""

    TSIG_NAME = "postbote-update"

    def __init__(self, zones: list[str], host: str = "127.0.0.1", port: int = 0):
        self.zones = zones
        self.host = host
        self.port = port or _free_port(host)
        self.tsig_secret = base64.b64encode(secrets.token_bytes(32)).decode()
        self.folder = Path(tempfile.mkdtemp(prefix="postbote-knot-"))
        self._proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _write(self) -> Path:
        (self.folder / "db").mkdir(exist_ok=True)
        for zone in self.zones:
            (self.folder / f"{zone}.zone").write_text(
                f"$ORIGIN {zone}.\n$TTL 60\n"
                f"@ SOA ns.{zone}. hostmaster.{zone}. 1 60 60 3600 60\n@ NS ns.{zone}.\nns A {self.host}\n"
            )
        zone_entries = "".join(f"  - domain: {z}\n    file: {self.folder}/{z}.zone\n    acl: update\n" for z in self.zones)
        config = self.folder / "knot.conf"
        config.write_text(
            f"server:\n  rundir: {self.folder}\n  listen: {self.host}@{self.port}\n"
            f"log:\n  - target: stderr\n    any: warning\n"
            f"database:\n  storage: {self.folder}/db\n"
            f"key:\n  - id: {self.TSIG_NAME}\n    algorithm: hmac-sha256\n    secret: {self.tsig_secret}\n"
            f"acl:\n  - id: update\n    key: {self.TSIG_NAME}\n    action: update\n"
            f"template:\n  - id: default\n    zonefile-sync: -1\n    semantic-checks: off\n"
            f"zone:\n{zone_entries}"
        )
        return config

    def start(self) -> "KnotServer":
        binary = knotd_path()
        if binary is None:
            raise FileNotFoundError("knotd (Debian package knot; scripts/install-system-deps)")
        self._proc = subprocess.Popen([binary, "-c", str(self._write())], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"knotd exited: {self._proc.stderr.read().decode()[-2000:]}")
            try:
                answer = dns.query.udp(dns.message.make_query(self.zones[0], "SOA"), self.host, port=self.port, timeout=0.5)
                if answer.answer:
                    return self
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("knotd did not answer")

    def stop(self) -> None:
        if self._proc:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "KnotServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

