"""The platform zone: the records CNAMEs point at. Printed as a zone file, or pushed to the
platform's authoritative server as an RFC 2136 UPDATE signed with TSIG (RFC 8945)."""

from __future__ import annotations

import dns.exception
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tsigkeyring
import dns.update
from sqlalchemy import Engine

from ..errors import ConfigError, DnsUpdateError
from ..settings import Settings, parse_host_port
from .records import Record, dkim_target, dkim_txt, spf_txt
from .store import domain_keys, list_domains

TTL = 3600


def platform_records(engine: Engine, settings: Settings) -> list[Record]:
    zone = settings.dkim_zone
    records: list[Record] = []
    for domain in list_domains(engine):
        for key in domain_keys(engine, domain.id):
            records.append(Record(dkim_target(domain.name, key.selector, zone, domain.claim_token), "TXT",
                                  dkim_txt(key.public_b64),
                                  f"DKIM key {key.selector} ({key.state.value}) of {domain.name}"))
    for key in domain_keys(engine, None):
        records.append(Record(f"{key.selector}._domainkey.{settings.PLATFORM_DOMAIN}", "TXT",
                              dkim_txt(key.public_b64), f"DKIM key {key.selector} ({key.state.value}) of the default sender"))
    rp = settings.return_path_host
    records.append(Record(rp, "MX", f"10 {settings.bounce_mx}.", "return path: where bounces go"))
    records.append(Record(rp, "TXT", spf_txt(settings.SOURCE_IPS), "return path: SPF with the sending IPs"))
    return records


def _rdata_text(record: Record) -> str:
    if record.type == "TXT":  # RFC 1035 §3.3.14: character-strings of at most 255 octets
        value = record.value
        return " ".join(f'"{value[i:i + 255]}"' for i in range(0, len(value), 255))
    return record.value


def zone_file(records: list[Record], *, comments: bool = True) -> str:
    lines = []
    for r in records:
        if comments:
            lines.append(f"; {r.purpose}")
        lines.append(f"{r.name}. {TTL} IN {r.type} {_rdata_text(r)}")
    return "\n".join(lines) + "\n"


def _connection(settings: Settings):
    if not settings.DNS_UPDATE_SERVER:
        raise ConfigError("DNS_UPDATE_SERVER is not set.", hint="Set it to the ip[:port] of the platform zone's "
                          "primary server, or publish 'postbote platform zone' by hand.")
    host, port = parse_host_port(settings.DNS_UPDATE_SERVER, default_port=53)
    keyring, keyname = None, None
    if settings.DNS_UPDATE_TSIG_NAME:
        keyname = dns.name.from_text(settings.DNS_UPDATE_TSIG_NAME)
        keyring = dns.tsigkeyring.from_text({settings.DNS_UPDATE_TSIG_NAME: settings.DNS_UPDATE_TSIG_SECRET})
    update = dns.update.Update(settings.dkim_zone, keyring=keyring, keyname=keyname,
                               keyalgorithm=settings.DNS_UPDATE_TSIG_ALGORITHM)
    return host, port, update


def _send(update, host: str, port: int) -> None:
    try:
        response = dns.query.tcp(update, host, port=port, timeout=10)
    except (dns.exception.DNSException, OSError) as exc:
        raise DnsUpdateError(f"The update could not be sent to {host}:{port}: {exc}.") from None
    if response.rcode() != dns.rcode.NOERROR:
        raise DnsUpdateError(f"{host}:{port} refused the update: {dns.rcode.to_text(response.rcode())}.")


def withdraw(names: list[str], settings: Settings) -> int:
    """Delete these names' TXT records from the platform zone (a removed domain's keys)."""
    host, port, update = _connection(settings)
    for name in names:
        update.delete(dns.name.from_text(name), "TXT")
    _send(update, host, port)
    return len(names)


def publish(records: list[Record], settings: Settings) -> int:
    """Replace each managed RRset in the platform zone; returns the number of RRsets sent."""
    if not settings.DNS_UPDATE_SERVER:
        raise ConfigError("DNS_UPDATE_SERVER is not set.", hint="Set it to the ip[:port] of the platform zone's "
                          "primary server, or publish 'postbote platform zone' by hand.")
    host, port = parse_host_port(settings.DNS_UPDATE_SERVER, default_port=53)
    keyring, keyname = None, None
    if settings.DNS_UPDATE_TSIG_NAME:
        keyname = dns.name.from_text(settings.DNS_UPDATE_TSIG_NAME)
        keyring = dns.tsigkeyring.from_text({settings.DNS_UPDATE_TSIG_NAME: settings.DNS_UPDATE_TSIG_SECRET})
    update = dns.update.Update(settings.dkim_zone, keyring=keyring, keyname=keyname,
                               keyalgorithm=settings.DNS_UPDATE_TSIG_ALGORITHM)
    grouped: dict[tuple[str, str], list[str]] = {}
    for record in records:
        grouped.setdefault((record.name, record.type), []).append(_rdata_text(record))
    for (name, rdtype), values in grouped.items():
        rdatas = [dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), v) for v in values]
        update.replace(dns.name.from_text(name), TTL, *rdatas)
    try:
        response = dns.query.tcp(update, host, port=port, timeout=10)
    except (dns.exception.DNSException, OSError) as exc:
        raise DnsUpdateError(f"The update could not be sent to {host}:{port}: {exc}.") from None
    if response.rcode() != dns.rcode.NOERROR:
        raise DnsUpdateError(f"{host}:{port} refused the update: {dns.rcode.to_text(response.rcode())}.")
    return len(grouped)
