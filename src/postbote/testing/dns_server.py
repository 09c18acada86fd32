"""A small authoritative DNS server (UDP and TCP) for test zones, run in its own thread.

It answers from records given as text (``"mx.acme.test. 300 IN MX 10 mx1.acme.test."`` style
pieces), with the distinctions resolvers care about: NXDOMAIN when a name does not exist at all,
NOERROR with an empty answer (NODATA) when the name exists with other types, and CNAMEs
followed within the zone. Records can be changed while it runs."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections import defaultdict

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class Zone:
    """Records by (name, type); names are absolute, case-insensitive."""

    def __init__(self) -> None:
        self._records: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = defaultdict(dict)
        self._faults: dict[tuple[dns.name.Name, int], list] = {}  # (name, type) → [rcode, times left or None]
        self._lock = threading.Lock()

    def fail(self, name: str, rdtype: str, rcode: str = "SERVFAIL", times: int | None = None) -> None:
        """Answer queries for (name, type) with ``rcode`` (SERVFAIL, NXDOMAIN, REFUSED …) instead of
        the records — every time, or the next ``times`` queries only (a blip)."""
        key = (dns.name.from_text(name), dns.rdatatype.from_text(rdtype))
        with self._lock:
            self._faults[key] = [dns.rcode.from_text(rcode), times]

    def _fault(self, name: dns.name.Name, kind: int) -> int | None:
        fault = self._faults.get((name, kind))
        if fault is None:
            return None
        rcode, left = fault
        if left is not None:
            if left <= 0:
                return None
            fault[1] = left - 1
        return rcode

    def add(self, name: str, rdtype: str, value: str, ttl: int = 300) -> None:
        owner = dns.name.from_text(name)
        kind = dns.rdatatype.from_text(rdtype)
        rdata = dns.rdata.from_text(dns.rdataclass.IN, kind, value, origin=dns.name.root, relativize=False)
        with self._lock:
            rrset = self._records[owner].get(kind)
            if rrset is None:
                rrset = self._records[owner][kind] = dns.rrset.RRset(owner, dns.rdataclass.IN, kind)
            rrset.add(rdata, ttl)

    def remove(self, name: str, rdtype: str | None = None) -> None:
        owner = dns.name.from_text(name)
        with self._lock:
            if rdtype is None:
                self._records.pop(owner, None)
            else:
                self._records[owner].pop(dns.rdatatype.from_text(rdtype), None)
                if not self._records[owner]:
                    del self._records[owner]

    def mail_domain(self, domain: str, *mx: tuple[int, str, str]) -> None:
        """Shortcut: MX records for ``domain``, each (preference, host, ip), with the hosts' A."""
        for preference, host, ip in mx:
            self.add(domain, "MX", f"{preference} {host}.")
            self.add(host, "A", ip)

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        name, kind = question.name, question.rdtype
        with self._lock:
            fault = self._fault(name, kind)
            if fault is not None:
                response.set_rcode(fault)
                return response
            for _ in range(8):  # follow CNAME chains inside the zone
                node = self._records.get(name)
                if node is None:
                    if not response.answer:
                        response.set_rcode(dns.rcode.NXDOMAIN)
                    return response
                if kind in node:
                    response.answer.append(node[kind])
                    return response
                cname = node.get(dns.rdatatype.CNAME)
                if cname is None:
                    return response  # NODATA: the name exists, the type does not
                response.answer.append(cname)
                name = cname[0].target
        return response


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone, server: "DnsServer"):
        self.zone, self.server = zone, server

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        if query.question:
            question = query.question[0]
            self.server.queries.append((question.name.to_text(), dns.rdatatype.to_text(question.rdtype)))
        response = self.zone.answer(query)
        wire = response.to_wire()
        limit = query.payload if query.edns >= 0 else 512
        if len(wire) > limit:  # RFC 1035 §4.2.1: truncate, the client retries over TCP
            response.answer.clear()
            response.flags |= dns.flags.TC
            wire = response.to_wire()
        self.transport.sendto(wire, addr)


class DnsServer:
    """``with DnsServer(zone, "127.0.0.1") as server: server.port``"""

    def __init__(self, zone: Zone, host: str = "127.0.0.1", port: int = 0):
        self.zone = zone
        self.host = host
        self.port = port
        self.queries: list[tuple[str, str]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "DnsServer":
        if not self.port:
            self.port = _free_port(self.host)
        self._thread = threading.Thread(target=self._run, name="test-dns", daemon=True)
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("DNS server did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._stopped:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(5)

    def __enter__(self) -> "DnsServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        transport, _ = await self._loop.create_datagram_endpoint(
            lambda: _Udp(self.zone, self), local_addr=(self.host, self.port)
        )
        tcp = await asyncio.start_server(self._tcp, self.host, self.port)
        self._ready.set()
        await self._stopped.wait()
        transport.close()
        tcp.close()

    async def _tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                query = dns.message.from_wire(await reader.readexactly(size))
                wire = self.zone.answer(query).to_wire()
                writer.write(struct.pack("!H", len(wire)) + wire)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, dns.exception.DNSException):
            pass
        finally:
            writer.close()


def _free_port(host: str) -> int:
    """A port free for both UDP and TCP on ``host``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                    return port
                except OSError:
                    continue
    raise RuntimeError("no free port")
