"""A webhook receiver on loopback for tests and benchmarks: a real HTTP server in a thread that
records every request (headers and body as they came) and answers as a test scripts it — a
status, a pause before answering, the first N requests failed — and can be stopped and started
again on the same port to play a receiver that is down for a while. With a TLS context it
speaks https."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float  # time.monotonic() when it arrived


@dataclass
class Behaviour:
    status: int = 200
    pause: float = 0.0  # seconds before answering
    answer: bytes = b"ok"
    fail_first: int = 0  # this many more requests answer fail_status
    fail_status: int = 503
    location: str | None = None  # sent with a 3xx status


class WebhookReceiver:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, tls_context=None):
        self.host, self.port = host, port
        self.tls_context = tls_context  # an ssl.SSLContext with a certificate: https
        self.behaviour = Behaviour()
        self.received: list[Received] = []
        self.connections = 0
        self._lock = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str = "/hook") -> str:
        return f"{'https' if self.tls_context else 'http'}://{self.host}:{self.port}{path}"

    def start(self) -> "WebhookReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                with receiver._lock:
                    receiver.connections += 1
                # Headers and body go out in two writes; without this, Nagle's algorithm holds the
                # body until the caller's delayed ACK (40 ms a request).
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                super().setup()

            def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the caller went away mid-request: nothing was received
                    self.close_connection = True
                    return
                with receiver._lock:
                    b = receiver.behaviour
                    status = b.status
                    if b.fail_first > 0:
                        b.fail_first -= 1
                        status = b.fail_status
                    pause, answer, location = b.pause, b.answer, b.location
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                      body, time.monotonic()))
                    receiver._lock.notify_all()
                if pause:
                    time.sleep(pause)
                try:
                    self.send_response(status)
                    if location:
                        self.send_header("Location", location)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):  # the caller gave up or died
                    self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            request_queue_size = 1024  # the listen backlog: callers open many connections at once

        self._server = Server((self.host, self.port), Handler)
        if self.tls_context is not None:
            self._server.socket = self.tls_context.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; the port is refused until ``start`` is called again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """The first ``count`` requests, once they have arrived; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.received)} webhook calls arrived within {timeout} s, not {count}")
                self._lock.wait(left)
            return list(self.received[:count])

    def __enter__(self) -> "WebhookReceiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
