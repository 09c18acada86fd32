"""Delivery throughput, end to end: enqueue N messages (about 4 KB, several recipient domains),
then deliver them with one worker into Postfix's smtp-sink on loopback, resolving MX through a
DNS server on loopback. Prints one JSON line per store.

    python benchmarks/throughput.py --messages 20000 --store sqlite --store postgresql

smtp-sink comes with Debian's postfix package (scripts/install-system-deps installs it; the
Postfix daemon is not started). PostgreSQL is read from POSTBOTE_BENCH_PG_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace


from common import free_port, store_url
from postbote.app import App
from postbote.compose import Draft, compose
from postbote.db import upgrade
from postbote.domains import ensure_platform_keys, sign as dkim_sign
from postbote.domains.store import active_key
from postbote.queue import Outgoing, enqueue_in, pending_count
from postbote.sending import vault_for
from postbote.tenants import add_tenant
from postbote.testing import DnsServer, Zone
from postbote.testing.sink import SmtpSink

BODY = ("Guten Tag, Ihr Antrag auf Urlaub vom 3. bis 14. August wurde genehmigt. " * 50)[:3600]




def enqueue(app: App, messages: int, domains: int, sign_with=None) -> float:
    """Compose (and, with ``sign_with``, DKIM-sign on a thread per core) and store in batches."""
    tenant = add_tenant(app.engine, "bench", "Bench GmbH")
    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2)

    def build(n: int) -> Outgoing:
        message = compose(Draft("Bench GmbH <hr@bench.test>", [f"user{n}@d{n % domains}.test"], f"Urlaubsantrag {n}",
                                BODY), id_domain="platform.test")
        if sign_with:
            domain, selector, key = sign_with
            message = replace(message, raw=dkim_sign(message.raw, domain=domain, selector=selector, key=key))
        return Outgoing(message, f"bounces+{message.id}@rp.platform.test")

    def submit(first: int) -> list:
        return [pool.submit(build, n) for n in range(first, min(first + 1000, messages))]

    started = time.perf_counter()
    pending = submit(0)
    for first in range(0, messages, 1000):
        upcoming = submit(first + 1000) if first + 1000 < messages else []  # sign ahead while storing
        batch = [f.result() for f in pending]
        with app.engine.begin() as conn:
            enqueue_in(conn, tenant.id, batch, lifetime=86400)
        pending = upcoming
    pool.shutdown()
    return time.perf_counter() - started


def run(kind: str, messages: int, domains: int, connections: int, dns: DnsServer, port: int, sign: bool = False) -> dict:
    workdir = tempfile.mkdtemp(prefix="postbote-bench-")
    url, cleanup = store_url(kind, workdir)
    app = App.from_environment(
        DATABASE_URL=url, DNS_NAMESERVERS=[dns.address], SMTP_PORT=port, HELO_NAME="bench.platform.test",
        MAX_CONNECTIONS_PER_DOMAIN=connections, TLS_MODE="off", LOG_LEVEL="WARNING", ALLOW_PRIVATE_MX=True,
        SECRET_KEY="benchmark-only-master-key", PLATFORM_DOMAIN="platform.test",
    )
    try:
        upgrade(app.engine)
        sign_with = None
        if sign:
            vault = vault_for(app.settings.SECRET_KEY)
            ensure_platform_keys(app.engine, vault)
            key = active_key(app.engine, None)
            sign_with = ("platform.test", key.selector, vault.open(key.sealed))
        enqueue_seconds = enqueue(app, messages, domains, sign_with)
        rss_queued = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        stats = _loop_run(app.worker().run(until_done=True, timeout=3600))
        seconds = time.perf_counter() - started
        left = pending_count(app.engine)
        return {
            "store": kind,
            "dkim_signed": sign,
            "messages": messages,
            "domains": domains,
            "connections_per_domain": connections,
            "seconds": round(seconds, 2),
            "msgs_per_s": round(messages / seconds, 1),
            "delivered": stats.outcomes.get("delivered", 0),
            "left_in_queue": left,
            "enqueue_msgs_per_s": round(messages / enqueue_seconds, 1),
            "end_to_end_msgs_per_s": round(messages / (seconds + enqueue_seconds), 1),
            "peak_rss_mb_queued": round(rss_queued, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    finally:
        app.close()
        cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def _loop_run(coro):
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--domains", type=int, default=5)
    parser.add_argument("--connections", type=int, default=10, help="per domain")
    parser.add_argument("--store", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--sign", action="store_true", help="DKIM-sign every message (RSA-2048) at acceptance")
    args = parser.parse_args()
    zone = Zone()
    for i in range(args.domains):
        zone.mail_domain(f"d{i}.test", (10, f"mx.d{i}.test", "127.0.0.1"))
    port = free_port()
    try:
        sink = SmtpSink("127.0.0.1", port, "-m", "1000")
    except FileNotFoundError as missing:
        raise SystemExit(f"not found: {missing}")
    with sink, DnsServer(zone) as dns:
        for kind in args.store or ["sqlite"]:
            print(json.dumps(run(kind, args.messages, args.domains, args.connections, dns, port, args.sign)), flush=True)


if __name__ == "__main__":
    main()
