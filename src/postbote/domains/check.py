"""The domain health check: what receivers will see when mail is sent as this domain, and one
sentence saying whether it passes DMARC — or which record to add.

Mail sent through Postbote as acme.com carries a DKIM signature with d=acme.com (aligned with
From whatever DMARC's adkim says) once the DKIM CNAMEs are in place, and an envelope sender on
pbmail.acme.com, whose SPF (the platform's, through the CNAME) aligns in relaxed mode. DMARC
passes when either aligns (RFC 7489 §4.2)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field

from publicsuffixlist import PublicSuffixList
from sqlalchemy import Engine

from ..dns import DnsTemporaryError, Resolver
from ..settings import Settings
from ..vocab import RecordStatus
from . import spf_check
from .partners import partner_verdicts
from .records import return_path_host
from .store import Domain, published_keys
from .verify import PLATFORM_NOT_PUBLISHED, check_records

_PSL = PublicSuffixList()


@dataclass
class Finding:
    ok: bool
    summary: str
    fix: str | None = None
    details: dict = field(default_factory=dict)


@dataclass
class HealthReport:
    domain: str
    passes_dmarc: bool
    verdict: str
    spf: Finding
    dkim: Finding
    dmarc: Finding
    mx: Finding
    partners: list[dict]

    def to_dict(self) -> dict:
        return asdict(self)


def _dmarc_tags(record: str) -> dict[str, str]:
    tags = {}
    for part in record.split(";"):
        key, _, value = part.strip().partition("=")
        if key:
            tags[key.strip().lower()] = value.strip()
    return tags


async def _dmarc_record(resolver: Resolver, domain: str) -> tuple[str | None, str]:
    """The DMARC record that applies: the domain's own, else its organisational domain's (RFC 7489 §6.6.3)."""
    org = _PSL.privatesuffix(domain) or domain
    for name in dict.fromkeys([domain, org]):
        found = [t for t in await resolver.txt(f"_dmarc.{name}", fresh=True) if t.lower().startswith("v=dmarc1")]
        if found:
            return found[0], name
    return None, org


async def health_check(engine: Engine, resolver: Resolver, settings: Settings, domain: Domain) -> HealthReport:
    name = domain.name
    records = await check_records(resolver, settings, name, published_keys(engine, domain.id), token=domain.claim_token)
    dkim = _dkim_finding(records)
    spf = await asyncio.to_thread(_spf_finding, settings, name, records)
    dmarc_record, dmarc_at = await _dmarc_record(resolver, name)
    tags = _dmarc_tags(dmarc_record) if dmarc_record else {}
    spf_aligned = spf.details.get("return_path_passes", False) and tags.get("aspf", "r") != "s"
    passes = dkim.ok or spf_aligned
    dmarc = _dmarc_finding(dmarc_record, dmarc_at, tags)
    mx = await _mx_finding(resolver, name)
    partners = await partner_verdicts(engine, resolver, settings, name)
    return HealthReport(name, passes, _verdict(name, passes, dkim, spf_aligned, tags, records), spf, dkim, dmarc, mx,
                        partners)


def _dkim_finding(records: list[dict]) -> Finding:
    cnames = [r for r in records if r["type"] == "CNAME" and "_domainkey" in r["name"]]
    bad = [r for r in cnames if r["status"] != RecordStatus.OK.value]
    if not bad:
        return Finding(True, "Both DKIM selectors point to the keys the platform publishes.",
                       details={"selectors": {r["name"]: r["status"] for r in cnames}})
    theirs = [r for r in bad if r.get("cause") != PLATFORM_NOT_PUBLISHED]
    ours = [r for r in bad if r.get("cause") == PLATFORM_NOT_PUBLISHED]
    fixes = []
    if theirs:
        fixes.append("Publish: " + "; ".join(f"{r['name']} CNAME {r['expected']}" for r in theirs) + ".")
    if ours:
        fixes.append(f"{_names(ours)} {'is' if len(ours) == 1 else 'are'} right; the platform has not published its "
                     "side yet: the platform team runs 'postbote platform publish'.")
    fix = " ".join(fixes)
    summary = (f"{len(bad)} of {len(cnames)} DKIM CNAMEs are {'/'.join(sorted({r['status'] for r in theirs}))}."
               if theirs else f"{len(bad)} of {len(cnames)} DKIM CNAMEs are right but lead to keys the platform has not "
               "published yet.")
    return Finding(False, summary,
                   fix, {"selectors": {r["name"]: r["status"] for r in cnames}})


def _spf_finding(settings: Settings, domain: str, checked: list[dict] = ()) -> Finding:
    records = spf_check.spf_records(settings, domain)
    rp = return_path_host(domain)
    probe_ip = settings.SOURCE_IPS[0] if settings.SOURCE_IPS else None
    rp_result = spf_check.evaluate(settings, probe_ip, f"postmaster@{rp}").result if probe_ip else "none"
    details = {"record": records[0] if len(records) == 1 else None, "lookups": None,
               "return_path": rp, "return_path_result": rp_result, "return_path_passes": rp_result == "pass"}
    if not records:
        return Finding(False, f"{domain} has no SPF record.",
                       f'Publish a TXT record at {domain}: "v=spf1 ~all" (add the includes of the services that send '
                       "as your domain). Mail through Postbote uses its own return path and does not need it.", details)
    if len(records) > 1:
        return Finding(False, f"{domain} has {len(records)} SPF records; receivers treat that as an error (RFC 7208 §4.5).",
                       "Merge them into one TXT record.", details)
    lookups = spf_check.count_lookups(settings, domain)
    details["lookups"] = lookups
    if lookups > spf_check.LOOKUP_LIMIT:
        return Finding(False, f"The SPF record of {domain} needs {lookups} DNS lookups; the limit is 10 "
                       "(RFC 7208 §4.6.4), so receivers answer permerror.",
                       "Remove includes you no longer use, or replace some by ip4:/ip6: ranges.", details)
    syntax = spf_check.evaluate(settings, "192.0.2.1", f"postmaster@{domain}").result
    if syntax == "permerror":
        return Finding(False, f"The SPF record of {domain} has an error (permerror).", "Correct its syntax.", details)
    if not details["return_path_passes"] and probe_ip:
        cname_right = any(r["name"] == rp and r["status"] == RecordStatus.OK.value for r in checked)
        fix = (f"{rp} is right: it points to {settings.return_path_host}. The platform has not published the SPF "
               f"record there yet: the platform team runs 'postbote platform publish'." if cname_right
               else f"Publish {rp} CNAME {settings.return_path_host}.")
        return Finding(False, f"Mail from the platform's IPs does not pass SPF for {rp} ({rp_result}).", fix, details)
    return Finding(True, f"SPF is valid ({lookups} of 10 lookups); the platform's return path {rp} passes.", None, details)


def _dmarc_finding(record: str | None, at: str, tags: dict) -> Finding:
    if record is None:
        return Finding(False, "No DMARC record.",
                       f'Publish _dmarc.{at} TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@{at}" to see who sends '
                       "as your domain, then tighten the policy.", {})
    details = {"record": record, "at": f"_dmarc.{at}", "policy": tags.get("p"), "adkim": tags.get("adkim", "r"),
               "aspf": tags.get("aspf", "r"), "reporting": tags.get("rua")}
    fix = None if tags.get("rua") else "Add rua=mailto:… to receive aggregate reports."
    return Finding(True, f"DMARC policy {tags.get('p', '?')} at _dmarc.{at}.", fix, details)


async def _mx_finding(resolver: Resolver, domain: str) -> Finding:
    try:
        mx = await resolver.mx(domain)
    except DnsTemporaryError as exc:
        return Finding(False, f"MX lookup failed: {exc}.")
    if mx.null_mx:
        return Finding(True, f"{domain} receives no mail (null MX); replies to it will bounce.",
                       "Use a Reply-To address that receives mail.", {"hosts": []})
    if mx.nxdomain or mx.no_address:
        return Finding(False, f"{domain} has no mail server.", "Publish MX records so replies reach you.", {"hosts": []})
    return Finding(True, f"{len(mx.hosts)} mail server(s).", None, {"hosts": [h.host for h in mx.hosts]})


def _verdict(domain, passes, dkim, spf_aligned, tags, records) -> str:
    policy = tags.get("p", "none")
    if passes:
        return f"Mail sent as {domain} through Postbote will pass DMARC."
    bad = [r for r in records if r["required"] and r["status"] != RecordStatus.OK.value]
    theirs = [r for r in bad if r.get("cause") != PLATFORM_NOT_PUBLISHED]
    consequence = {"reject": "will be rejected", "quarantine": "will go to spam"}.get(
        policy, "will fail DMARC and is likely to land in spam")
    if not theirs and bad:
        return (f"Mail sent as {domain} through Postbote {consequence} until the platform publishes its side: "
                f"{_names(bad)} {'is' if len(bad) == 1 else 'are'} right at your side; the platform team runs "
                "'postbote platform publish'.")
    missing = "; ".join(f"{r['name']} CNAME {r['expected']}" for r in theirs)
    return f"Mail sent as {domain} through Postbote {consequence}: publish {missing}."


def _names(records: list[dict]) -> str:
    names = [r["name"] for r in records]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
