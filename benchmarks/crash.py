"""Crash safety at scale: N messages, worker processes killed with SIGKILL K times at random
moments while they deliver, counted at the receiver by Message-ID. Prints one JSON line per store.

    python benchmarks/crash.py --messages 20000 --kills 20 --workers 2 --store sqlite --store postgresql

The promise measured: nothing lost, nothing stuck, and duplicates no more than the messages that
were on the wire at the kills — at most one per SMTP connection the killed process had open (a
sender puts the next message on a connection only once the store has recorded the last one).
The connections are counted at each kill from the killed process's own sockets (Linux /proc).
The receiver is aiosmtpd on loopback; PostgreSQL is read from POSTBOTE_BENCH_PG_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter

from sqlalchemy import func, select

from postbote.app import App
from postbote.compose import Draft, compose
from postbote.db import deliveries, upgrade
from postbote.queue import Outgoing, enqueue_in
from postbote.tenants import add_tenant
from postbote.testing import DnsServer, Receiver, Zone

sys.path.insert(0, os.path.dirname(__file__))
from throughput import free_port, store_url  # noqa: E402

MX = "127.0.0.10"
DOMAINS = 5


def open_connections(pid: int, port: int) -> int:
    """TCP connections of process ``pid`` to ``port`` that are established right now."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except FileNotFoundError:
        return 0
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    remote_port = int(parts[2].rsplit(":", 1)[1], 16)
                    if parts[3] == "01" and remote_port == port and parts[9] in inodes:  # 01: ESTABLISHED
                        count += 1
        except FileNotFoundError:
            continue
    return count


def worker_env(url: str, dns: DnsServer, port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBOTE_")}
    env.update({
        "POSTBOTE_CONFIG": os.devnull,
        "POSTBOTE_DATABASE_URL": url,
        "POSTBOTE_DNS_NAMESERVERS": dns.address,
        "POSTBOTE_SMTP_PORT": str(port),
        "POSTBOTE_HELO_NAME": "crash.platform.test",
        "POSTBOTE_RETRY_SCHEDULE": "1s",
        "POSTBOTE_LEASE_DURATION": "3s",
        "POSTBOTE_MAX_INFLIGHT": "2000",
        "POSTBOTE_TLS_MODE": "off",
        "POSTBOTE_LOG_LEVEL": "WARNING",
        "POSTBOTE_ALLOW_PRIVATE_MX": "true",
    })
    return env


def start(env: dict, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "postbote", "worker", "--until-done", "--timeout", "900"],
                            env=env, stdout=subprocess.DEVNULL, stderr=log)


def _tail(log) -> str:
    log.flush()
    log.seek(0)
    return log.read()[-3000:]


def run(kind: str, messages: int, kills: int, workers: int, dns: DnsServer, seed: int) -> dict:
    workdir = tempfile.mkdtemp(prefix="postbote-crash-")
    url, cleanup = store_url(kind, workdir)
    port = free_port()
    app = App.from_environment(DATABASE_URL=url, PLATFORM_DOMAIN="platform.test")
    rng = random.Random(seed)
    try:
        upgrade(app.engine)
        tenant = add_tenant(app.engine, "crash")
        for first in range(0, messages, 1000):
            batch = [Outgoing.plain(compose(Draft("hr@crash.test", [f"u{n}@d{n % DOMAINS}.test"], f"Nachricht {n}",
                                                  "Hallo " * 100), id_domain="platform.test"))
                     for n in range(first, min(first + 1000, messages))]
            with app.engine.begin() as conn:
                enqueue_in(conn, tenant.id, batch, lifetime=86400)
        env = worker_env(url, dns, port)
        # Kill at random moments: when the receiver has this many messages.
        moments = sorted(rng.sample(range(messages // 50, messages * 19 // 20), kills))
        on_the_wire = []
        started = time.perf_counter()
        log = open(os.path.join(workdir, "workers.log"), "w+")
        with Receiver(MX, port) as mx:
            procs = [start(env, log) for _ in range(workers)]
            for n, moment in enumerate(moments):
                while len(mx.messages) < moment and any(p.poll() is None for p in procs):
                    time.sleep(0.002)
                victim = procs[n % workers]
                if victim.poll() is not None:
                    raise SystemExit(f"worker exited early: {_tail(log)}")
                on_the_wire.append(open_connections(victim.pid, port))
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                procs[n % workers] = start(env, log)
            for p in procs:
                if p.wait(timeout=900) != 0:
                    raise SystemExit(f"worker failed: {_tail(log)}")
            seconds = time.perf_counter() - started
            received = Counter(m.message_id for m in mx.messages)
        with app.engine.connect() as conn:
            by_state = dict(conn.execute(select(deliveries.c.state, func.count()).group_by(deliveries.c.state)).all())
        wanted = messages
        return {
            "store": kind,
            "workers": workers,
            "messages": messages,
            "kills": kills,
            "lost": wanted - len(received),
            "duplicates": sum(n - 1 for n in received.values()),
            "bound_on_the_wire_at_kills": sum(on_the_wire),
            "connections_at_each_kill": on_the_wire,
            "stuck": wanted - by_state.get("delivered", 0),
            "states": by_state,
            "seconds": round(seconds, 1),
        }
    finally:
        app.close()
        cleanup()
        if os.path.exists(os.path.join(workdir, "workers.log")):
            shutil.copy(os.path.join(workdir, "workers.log"), os.path.join(tempfile.gettempdir(), f"postbote-crash-{kind}.log"))
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--store", action="append", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    zone = Zone()
    for i in range(DOMAINS):
        zone.mail_domain(f"d{i}.test", (10, f"mx.d{i}.test", MX))
    with DnsServer(zone) as dns:
        for kind in args.store or ["sqlite"]:
            print(json.dumps(run(kind, args.messages, args.kills, args.workers, dns, args.seed)), flush=True)


if __name__ == "__main__":
    main()
