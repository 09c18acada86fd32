"""kill -9 the API while clients POST: every message answered 202 is delivered, none lost —
counted at a real receiver (each message has its own subject). On both stores, through `postbote serve` as a process."""

from __future__ import annotations

import email
import json
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from postbote.testing import Receiver
from tests.conftest import MX1, free_port
from tests.integration.test_cli import cli_env, postbote

CLIENTS = 8
KILLS = 2
ACCEPTED_BEFORE_KILL = 120  # 202 answers between a start and the kill that ends it


def subjects(mx: Receiver) -> set[str]:
    return {email.message_from_bytes(m.data)["Subject"] for m in list(mx.messages)}


def start_serve(env, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "postbote", "serve"], env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_api(http: httpx.Client, server: subprocess.Popen) -> None:
    for _ in range(300):
        assert server.poll() is None, "serve exited"
        try:
            http.get("/v1/health")
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("the API did not come up")


@pytest.mark.slow
def test_every_message_answered_202_is_delivered_after_the_api_is_killed(make_app, zone, smtp_port, tmp_path):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    env = cli_env(make_app())
    port = free_port("127.0.0.1")
    env["POSTBOTE_API_LISTEN"] = f"127.0.0.1:{port}"
    env["POSTBOTE_LEASE_DURATION"] = "10s"  # what the killed process had claimed is taken over soon
    postbote(env, tmp_path, "tenant", "add", "acme")
    key = json.loads(postbote(env, tmp_path, "tenant", "key", "acme", "--json").stdout)["api_key"]
    accepted: dict[str, str] = {}  # Postbote id → subject, for every 202
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10,
                          headers={"Authorization": f"Bearer {key}"}) as http:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    answer = http.post("/v1/messages", json={"from": "hr@acme.test", "to": [f"c{n}-{i}@beispiel.test"],
                                                             "subject": f"Nachricht {n}-{i}", "text": "Hallo"})
                except httpx.TransportError:
                    time.sleep(0.02)  # the API is down: no answer, so no promise was made
                    continue
                if answer.status_code == 202:
                    with lock:
                        accepted[answer.json()["id"]] = f"Nachricht {n}-{i}"

    with Receiver(MX1, smtp_port) as mx, httpx.Client(base_url=f"http://127.0.0.1:{port}") as probe:
        server = start_serve(env, tmp_path)
        try:
            wait_for_api(probe, server)
            threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
            for t in threads:
                t.start()
            for _ in range(KILLS):
                target = len(accepted) + ACCEPTED_BEFORE_KILL
                deadline = time.monotonic() + 120
                while len(accepted) < target and time.monotonic() < deadline:
                    time.sleep(0.01)
                server.send_signal(signal.SIGKILL)  # in the middle of the POSTs
                server.wait()
                server = start_serve(env, tmp_path)
                wait_for_api(probe, server)
            stop.set()
            for t in threads:
                t.join()
            promised = set(accepted.values())
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                arrived = subjects(mx)
                if promised <= arrived:
                    break
                time.sleep(0.2)
            lost = promised - subjects(mx)
            assert len(promised) >= KILLS * ACCEPTED_BEFORE_KILL
            assert not lost, f"{len(lost)} of {len(promised)} messages answered 202 never arrived"
        finally:
            stop.set()
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
