"""Bulk address checks: ``check_addresses`` over N addresses spread over D domains, MX looked up
through a DNS server on loopback — once with an empty cache, once with the answers cached.
Prints one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from postbote.app import App
from postbote.recipients import check_addresses
from postbote.testing import DnsServer, Zone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--addresses", type=int, default=20000)
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=500, help="addresses checked concurrently")
    args = parser.parse_args()
    zone = Zone()
    for i in range(args.domains):
        zone.mail_domain(f"firma{i}.test", (10, f"mx.firma{i}.test", "127.0.0.10"))
    addresses = [f"person.{n}@firma{n % args.domains}.test" for n in range(args.addresses)]
    with DnsServer(zone) as dns:
        app = App.from_environment(DNS_NAMESERVERS=[dns.address], ALLOW_TEST_DOMAINS=True)

        async def run() -> float:
            started = time.perf_counter()
            for i in range(0, len(addresses), args.batch):
                results = await check_addresses(addresses[i:i + args.batch], app.settings, app.resolver)
                assert all(r.ok for r in results)
            return time.perf_counter() - started

        uncached = asyncio.run(run())  # the first pass fills the resolver's cache
        cached = asyncio.run(run())
    print(json.dumps({"addresses": args.addresses, "domains": args.domains,
                      "uncached_addresses_per_s": round(args.addresses / uncached),
                      "cached_addresses_per_s": round(args.addresses / cached)}))


if __name__ == "__main__":
    main()
