"""Events per second through the public API: ``POST /v1/events`` over HTTP into queued
messages. One workflow with one e-mail action for one recipient; each event's message is
rendered (subject, text and HTML in the sandbox), its recipient checked (MX through a DNS server
on loopback, cached), DKIM-signed (RSA-2048) and queued. The API runs as its own process
(uvicorn); the client posts with ``--concurrency`` requests in flight. Prints one JSON line per
store.

    python benchmarks/events.py --events 2000 --store sqlite --store postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time

import httpx
from sqlalchemy import func, select

from common import free_port, store_url
from postbote.app import App
from postbote.db import upgrade
from postbote.db.schema import deliveries, workflow_messages
from postbote.tenants import add_tenant, create_key
from postbote.testing import DnsServer, Zone

WORKFLOW = {
    "name": "Bench: stage changed", "trigger": "candidate.stage_changed",
    "conditions": [{"field": "fields.stage", "op": "eq", "value": "interview"}],
    "actions": [{"recipients": [{"role": "candidate"}], "sender": {"domain": None, "display_name": "ACME Recruiting"},
                 "templates": {"de": {"subject": "Einladung zum Gespräch, {{ candidate.name }}",
                                      "text": "Hallo {{ candidate.name }},\n\nwir laden Sie am {{ fields.date }} ein."
                                              "\n{% for step in fields.steps %}- {{ step }}\n{% endfor %}",
                                      "html": "<p>Hallo {{ candidate.name }}</p><ul>{% for step in fields.steps %}"
                                              "<li>{{ step }}</li>{% endfor %}</ul>"}}}],
}
SERVER = """
import sys, uvicorn
from postbote.app import App
from postbote.api import create_api
uvicorn.run(create_api(App.from_environment()), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""




def event(i: int, prefix: str) -> dict:
    return {"type": "candidate.stage_changed", "idempotency_key": f"{prefix}-{i}",
            "people": {"candidate": {"email": f"kandidat{i}@kandidaten.test", "name": f"Kandidat {i}", "lang": "de"}},
            "fields": {"stage": "interview", "date": "3. Dezember", "steps": ["Anreise", "Gespräch", "Rundgang"]}}


async def post_all(base: str, key: str, count: int, concurrency: int, prefix: str) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        async def one_client():
            while not queue.empty():
                i = queue.get_nowait()
                answer = await client.post("/v1/events", json=event(i, prefix))
                assert answer.status_code == 200 and answer.json()["results"][0]["outcome"] == "sent", answer.text

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        return time.perf_counter() - started


def run(kind: str, count: int, concurrency: int) -> dict:
    workdir = tempfile.mkdtemp(prefix="postbote-events-")
    url, drop = store_url(kind, workdir)
    zone = Zone()
    zone.mail_domain("kandidaten.test", (10, "mx.kandidaten.test", "127.0.0.10"))
    with DnsServer(zone, "127.0.0.1") as dns:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("POSTBOTE_")},
               "POSTBOTE_CONFIG": os.devnull, "POSTBOTE_DATABASE_URL": url,  # no config file: settings from here
               "POSTBOTE_DNS_NAMESERVERS": dns.address, "POSTBOTE_SECRET_KEY": secrets.token_hex(16),
               "POSTBOTE_PLATFORM_DOMAIN": "platform.test", "POSTBOTE_ALLOW_TEST_DOMAINS": "true",
               "POSTBOTE_LOG_LEVEL": "WARNING"}
        os.environ.update({k: v for k, v in env.items() if k.startswith("POSTBOTE_")})
        app = App.from_environment()
        upgrade(app.engine)
        key = create_key(app.engine, add_tenant(app.engine, "acme", "ACME GmbH"))
        port = free_port()
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    if httpx.get(f"{base}/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            created = httpx.post(f"{base}/v1/workflows", json=WORKFLOW, headers={"Authorization": f"Bearer {key}"})
            assert created.status_code == 201, created.text
            asyncio.run(post_all(base, key, 20, 4, "warm-up"))  # warm-up: platform keys, caches, compiled templates
            seconds = asyncio.run(post_all(base, key, count, concurrency, "bench"))
        finally:
            server.terminate()
            server.wait(10)
        with app.engine.connect() as conn:
            queued = conn.execute(select(func.count()).select_from(deliveries).where(deliveries.c.state == "queued")).scalar()
            made = conn.execute(select(func.count()).select_from(workflow_messages)).scalar()
        app.close()
    drop()
    assert queued == made == count + 20, (queued, made)
    return {"store": kind, "events": count, "concurrency": concurrency, "seconds": round(seconds, 2),
            "events_per_second": round(count / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--store", action="append", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    for kind in args.store or ["sqlite"]:
        print(json.dumps(run(kind, args.events, args.concurrency)), flush=True)


if __name__ == "__main__":
    main()
