"""Webhook calls through the public interface: `postbote serve` as its own process, an endpoint
registered over HTTP, N messages POSTed in batches and delivered into Postfix's smtp-sink, and
every `message.queued` and `message.delivered` event called, signed, to a webhook receiver on
loopback. Timed from the first POST until the receiver holds all 2N events. Prints one JSON
line: calls per second end to end, and the delay from an event to its call (p50, p99).

    python benchmarks/webhooks.py --messages 2000 [--store postgresql] [--without-webhooks]

``--without-webhooks`` registers no endpoint and times until the sink has every message: the same
run without the calls, to see what they cost the rest.

The receiver is Python's threading HTTP server in this process (it costs CPU on the same two
cores), so the figures are floors. Nothing leaves 127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

import httpx

from accept import CountingSink, postbote, wait_listening
from common import free_port, store_url
from postbote.testing import DnsServer, WebhookReceiver, Zone


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 1) if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--without-webhooks", action="store_true")
    args = parser.parse_args()

    zone = Zone()
    zone.mail_domain("kunde.test", (10, "mx.kunde.test", "127.0.0.1"))
    smtp_port, api_port = free_port(), free_port()
    workdir = tempfile.mkdtemp(prefix="postbote-webhooks-")
    sink = CountingSink(smtp_port)
    url, drop_store = store_url(args.store, workdir)
    try:
        with DnsServer(zone) as dns, WebhookReceiver() as hooks:
            env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBOTE_")}
            env.update({
                "POSTBOTE_CONFIG": os.path.join(workdir, "postbote.toml"), "POSTBOTE_DATABASE_URL": url,
                "POSTBOTE_DNS_NAMESERVERS": dns.address, "POSTBOTE_SMTP_PORT": str(smtp_port),
                "POSTBOTE_API_LISTEN": f"127.0.0.1:{api_port}", "POSTBOTE_HELO_NAME": "bench.platform.test",
                "POSTBOTE_PLATFORM_DOMAIN": "platform.test", "POSTBOTE_TLS_MODE": "off",
                "POSTBOTE_LOG_LEVEL": "WARNING", "POSTBOTE_ALLOW_TEST_DOMAINS": "true",
                "POSTBOTE_ALLOW_PRIVATE_MX": "true", "POSTBOTE_ALLOW_PRIVATE_WEBHOOKS": "true",
                "POSTBOTE_SECRET_KEY": "benchmark-only-master-key-0123456789abcdef",
            })
            postbote(env, workdir, "init")
            postbote(env, workdir, "tenant", "add", "bench", "--display-name", "Bench GmbH")
            key = json.loads(postbote(env, workdir, "tenant", "key", "bench", "--json"))["api_key"]
            log = open(os.path.join(workdir, "serve.log"), "w")
            serve = subprocess.Popen([sys.executable, "-m", "postbote", "serve"], env=env, cwd=workdir,
                                     stdout=subprocess.DEVNULL, stderr=log)
            try:
                wait_listening(api_port, serve)
                api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {key}"},
                                   timeout=60)
                if not args.without_webhooks:
                    made = api.post("/v1/webhooks", json={"url": hooks.url(),
                                                          "events": ["message.queued", "message.delivered"]})
                    made.raise_for_status()
                started = time.perf_counter()
                for first in range(0, args.messages, args.batch):
                    count = min(args.batch, args.messages - first)
                    batch = [{"from": "HR <hr@platform.test>", "to": [f"p{first + i}@kunde.test"], "subject": "Hallo",
                              "text": "Willkommen"} for i in range(count)]
                    api.post("/v1/messages/batch", json={"messages": batch}).raise_for_status()
                wanted = 0 if args.without_webhooks else 2 * args.messages
                deadline = time.monotonic() + args.timeout
                while len({r.headers["webhook-id"] for r in list(hooks.received)}) < wanted and time.monotonic() < deadline:
                    time.sleep(0.05)
                sink.wait_for(args.messages, timeout=max(0.0, deadline - time.monotonic()))
                seconds = time.perf_counter() - started
                received = list(hooks.received)
                # the delay from the event (its timestamp) to the call's arrival, in wall-clock time
                now_wall, now_mono = datetime.now(timezone.utc).timestamp(), time.monotonic()
                delays = []
                for r in received:
                    at = datetime.fromisoformat(json.loads(r.body)["timestamp"].replace("Z", "+00:00")).timestamp()
                    delays.append((now_wall - (now_mono - r.at) - at) * 1000)
                distinct = len({r.headers["webhook-id"] for r in received})
                result = {"store": args.store, "messages": args.messages, "events": wanted, "calls_received": len(received),
                          "distinct_events": distinct, "all_received": distinct >= wanted,
                          "delivered_at_sink": sink.count, "seconds": round(seconds, 1),
                          "calls_per_s_end_to_end": round(distinct / seconds, 1),
                          "delivered_per_s_end_to_end": round(sink.count / seconds, 1),
                          "p50_event_to_call_ms": _percentile(delays, 0.5), "p99_event_to_call_ms": _percentile(delays, 0.99)}
            finally:
                serve.terminate()
                try:
                    serve.wait(20)
                except subprocess.TimeoutExpired:
                    serve.kill()
                log.close()
            print(json.dumps(result), flush=True)
    finally:
        sink.stop()
        drop_store()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
