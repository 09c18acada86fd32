"""Acceptance through the public interface: `postbote serve` as its own process, N messages
POSTed to /v1/messages over HTTP by a client in another process, each DKIM-signed and delivered
into Postfix's smtp-sink on loopback; timed until the sink has counted N. Prints one JSON line.

    python benchmarks/accept.py --messages 5000 --clients 20 [--batch 100] [--store postgresql] [--workers 2]

`--workers N` runs N delivering processes on the store: `serve`'s own worker plus N-1
`postbote worker` processes beside it, as on several hosts.

The client is Python (httpx's async client on uvloop, keep-alive connections) in a separate
process: it costs CPU on the same two cores, so the figure is a floor for what `serve` can take.
smtp-sink runs with -c and its counter is read from its standard output. MX records come from
the project's DNS test server on loopback; nothing leaves 127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pty
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from common import free_port, store_url
from postbote.testing import DnsServer, Zone
from postbote.testing.binaries import sbin

BODY = ("Guten Tag, Ihr Antrag auf Urlaub vom 3. bis 14. August wurde genehmigt. " * 50)[:3600]



class CountingSink:
    """smtp-sink with its running counters (-c) read from stdout: ``count`` is messages received."""

    def __init__(self, port: int):
        path = sbin("smtp-sink")
        if path is None:
            raise SystemExit("smtp-sink not found (Debian package postfix; scripts/install-system-deps)")
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        # The counters go to a terminal promptly; to a pipe they would sit in a buffer.
        self._master, terminal = pty.openpty()
        self.proc = subprocess.Popen([path, *user, "-c", "-m", "1000", f"127.0.0.1:{port}", "1024"],
                                     stdout=terminal, stderr=subprocess.DEVNULL)
        os.close(terminal)
        self.count = 0
        self.changed = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._master, 4096)
            except OSError:
                return
            if not chunk:
                return
            buffer = (buffer + chunk)[-256:]
            found = re.findall(rb"mesg=(\d+)", buffer)
            if found:
                self.count = int(found[-1])
                self.changed.set()

    def wait_for(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.count < n:
            if time.monotonic() > deadline:
                return False
            self.changed.wait(0.05)
            self.changed.clear()
        return True

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


def postbote(env: dict, cwd: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "postbote", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"postbote {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited with {proc.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit("serve did not listen")


def peak_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


async def _client(url: str, key: str, messages: int, clients: int, domains: int, batch: int) -> dict:
    import httpx

    latencies: list[float] = []
    failures: dict[str, int] = {}
    counter = iter(range(messages))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60,
                                 headers={"Authorization": f"Bearer {key}"}) as http:
        def body(n: int) -> dict:
            return {"from": "Bench GmbH <hr@bench.test>", "to": [f"user{n}@d{n % domains}.test"],
                    "subject": f"Urlaubsantrag {n}", "text": BODY}

        async def one_client() -> None:
            while numbers := [n for _, n in zip(range(batch or 1), counter)]:
                started = time.perf_counter()
                if batch:
                    answer = await http.post("/v1/messages/batch", json={"messages": [body(n) for n in numbers]})
                    statuses = [str(r["status"]) for r in answer.json()["results"]] if answer.status_code == 200 \
                        else [str(answer.status_code)] * len(numbers)
                else:
                    answer = await http.post("/v1/messages", json=body(numbers[0]))
                    statuses = [str(answer.status_code)]
                latencies.extend([time.perf_counter() - started] * len(numbers))
                for status in statuses:
                    if status != "202":
                        failures[status] = failures.get(status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        seconds = time.perf_counter() - started
    latencies.sort()
    return {"seconds": seconds, "accepted": len(latencies) - sum(failures.values()), "failures": failures,
            "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1)}


def client_main(args: argparse.Namespace) -> None:
    try:
        import uvloop
        run = uvloop.run
    except ImportError:
        run = asyncio.run
    print(json.dumps(run(_client(args.url, args.key, args.messages, args.clients, args.domains, args.batch))), flush=True)



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=20, help="concurrent keep-alive connections")
    parser.add_argument("--domains", type=int, default=5)
    parser.add_argument("--batch", type=int, default=0, help="POST /v1/messages/batch with this many messages each")
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1, help="delivering processes, serve's included")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the sink")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client_main(args)

    zone = Zone()
    for i in range(args.domains):
        zone.mail_domain(f"d{i}.test", (10, f"mx.d{i}.test", "127.0.0.1"))
    smtp_port, api_port = free_port(), free_port()
    workdir = tempfile.mkdtemp(prefix="postbote-accept-")
    sink = CountingSink(smtp_port)
    url, drop_store = store_url(args.store, workdir)
    try:
        with DnsServer(zone) as dns:
            env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBOTE_")}
            env.update({
                "POSTBOTE_CONFIG": os.path.join(workdir, "postbote.toml"),
                "POSTBOTE_DATABASE_URL": url,
                "POSTBOTE_DNS_NAMESERVERS": dns.address,
                "POSTBOTE_SMTP_PORT": str(smtp_port),
                "POSTBOTE_API_LISTEN": f"127.0.0.1:{api_port}",
                "POSTBOTE_HELO_NAME": "bench.platform.test",
                "POSTBOTE_PLATFORM_DOMAIN": "platform.test",
                "POSTBOTE_TLS_MODE": "off",
                "POSTBOTE_LOG_LEVEL": "WARNING",
                "POSTBOTE_ALLOW_TEST_DOMAINS": "true",
                "POSTBOTE_ALLOW_PRIVATE_MX": "true",
                "POSTBOTE_MAX_CONNECTIONS_PER_DOMAIN": "10",
                "POSTBOTE_SECRET_KEY": "benchmark-only-master-key-0123456789abcdef",
            })
            postbote(env, workdir, "init")
            postbote(env, workdir, "tenant", "add", "bench", "--display-name", "Bench GmbH")
            key = json.loads(postbote(env, workdir, "tenant", "key", "bench", "--json"))["api_key"]
            logs = [open(os.path.join(workdir, f"process{n}.log"), "w") for n in range(args.workers)]
            serve = subprocess.Popen([sys.executable, "-m", "postbote", "serve"], env=env, cwd=workdir,
                                     stdout=subprocess.DEVNULL, stderr=logs[0])
            workers = [subprocess.Popen([sys.executable, "-m", "postbote", "worker"], env=env, cwd=workdir,
                                        stdout=subprocess.DEVNULL, stderr=log) for log in logs[1:]]
            try:
                wait_listening(api_port, serve)
                started = time.perf_counter()
                client = subprocess.run(
                    [sys.executable, __file__, "--client", "--url", f"http://127.0.0.1:{api_port}", "--key", key,
                     "--messages", str(args.messages), "--clients", str(args.clients), "--domains", str(args.domains),
                     "--batch", str(args.batch)],
                    capture_output=True, text=True, check=True)
                accepted = json.loads(client.stdout)
                delivered_all = sink.wait_for(accepted["accepted"], timeout=args.timeout)
                end_to_end = time.perf_counter() - started
                result = {
                    "store": args.store, "workers": args.workers, "mode": f"batch of {args.batch}" if args.batch else "single", "dkim_signed": True, "messages": args.messages,
                    "clients": args.clients, "accepted": accepted["accepted"], "refused": accepted["failures"],
                    "accepted_per_s": round(accepted["accepted"] / accepted["seconds"], 1),
                    "p50_accept_ms": accepted["p50_ms"], "p99_accept_ms": accepted["p99_ms"],
                    "received_at_sink": sink.count, "all_received": delivered_all,
                    "end_to_end_per_s": round(sink.count / end_to_end, 1),
                    "peak_rss_mb_serve": peak_rss_mb(serve.pid),
                }
            finally:
                for process in [serve, *workers]:
                    process.terminate()
                    try:
                        process.wait(20)
                    except subprocess.TimeoutExpired:
                        process.kill()
                for log in logs:
                    log.close()
            written = [open(log.name).read() for log in logs]
            result["database_locked_errors"] = sum(text.count("database is locked") for text in written)
            if not result["all_received"]:
                result["serve_log_tail"] = written[0][-2000:]
            print(json.dumps(result), flush=True)
    finally:
        sink.stop()
        drop_store()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
