"""Postfix's smtp-sink on loopback: a real, fast SMTP receiver from Debian's postfix package
(the Postfix daemon is not needed). Used by the interop tests and the throughput benchmark."""

from __future__ import annotations

import os
import socket
import subprocess
import time

from .binaries import sbin


def smtp_sink_path() -> str | None:
    return sbin("smtp-sink")


class SmtpSink:
    """``with SmtpSink("127.0.0.1", port, "-r", "RCPT"): ...`` — extra arguments go to smtp-sink
    (``-r CMD`` soft-rejects a command, ``-f CMD`` hard-rejects it, ``-q CMD`` disconnects)."""

    def __init__(self, host: str, port: int, *options: str):
        path = smtp_sink_path()
        if path is None:
            raise FileNotFoundError("smtp-sink (Debian package postfix; scripts/install-system-deps)")
        # As root smtp-sink refuses to start without dropping privileges.
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self._argv = [path, *user, *options, f"{host}:{port}", "1024"]
        self.host, self.port = host, port
        self._proc: subprocess.Popen | None = None

    def start(self) -> "SmtpSink":
        self._proc = subprocess.Popen(self._argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(200):
            if self._proc.poll() is not None:
                raise RuntimeError(f"smtp-sink exited: {self._proc.stderr.read().decode().strip()}")
            with socket.socket() as probe:
                if probe.connect_ex((self.host, self.port)) == 0:
                    return self
            time.sleep(0.025)
        raise RuntimeError("smtp-sink did not start listening")

    def stop(self) -> None:
        if self._proc:
            self._proc.terminate()
            self._proc.wait(5)

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
