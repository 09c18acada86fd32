"""The kit in the form each mail system takes: what an IT admin pastes or clicks. Every format
carries the rule on authenticated mail first and the address list second (see kit.py for why).

The snippets are checked by the tools themselves in the tests: Postfix's ``postmap`` reads the
table, Exim reads the configuration (``exim -bV``) and plays an SMTP session with it (``-bh``),
pyspf evaluates the SPF mechanisms, and the PowerShell is parsed."""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Callable

from ..db.schema import iso_utc
from ..errors import InputError
from .kit import Kit

LANGUAGES = ("de", "en", "es")


@lru_cache(maxsize=None)
def texts(lang: str) -> dict:
    return tomllib.loads((Path(__file__).parent / "texts" / f"{lang}.toml").read_text(encoding="utf-8"))


def render(kit: Kit, fmt: str, lang: str = "en") -> str:
    if fmt not in FORMATS:
        raise InputError(f"The format {fmt!r} does not exist.", code="format_unknown",
                         hint=f"Use one of: {', '.join(FORMATS)}.")
    if lang not in LANGUAGES:
        raise InputError(f"The language {lang!r} is not available.", code="language_unknown", hint="Use de, en or es.")
    return FORMATS[fmt](kit, texts(lang))


def _title(kit: Kit, t: dict) -> str:
    return t["title"].format(who=kit.tenant or t["platform_who"], at=iso_utc(kit.generated_at))


def _text(kit: Kit, t: dict) -> str:
    lines = [_title(kit, t), "", t["prefer"], t["why"], ""]
    for sender in kit.senders:
        lines.append(f"{sender.name} — {t['kind_' + sender.kind]}")
        lines.append(f"  {t['signed_as']}: {', '.join(sender.dkim_domains) or t['none']}")
        lines.append(f"  {t['spf']}: {('include:' + sender.spf_include) if sender.spf_include else t['none']}")
        lines.append(f"  {t['ips']}: {', '.join(sender.ips) or t['none']}")
        for host in sender.hosts:
            state = (t["resolved"].format(at=iso_utc(host.resolved_at)) if not host.error
                     else t["unresolved"].format(error=host.error))
            lines.append(f"  {t['hosts']}: {host.name} → {', '.join(host.addresses) or '-'} ({state})")
        lines.append("")
    return "\n".join(lines)


def _json(kit: Kit, t: dict) -> str:
    return json.dumps({**kit.to_dict(), "prefer": "authenticated", "advice": t["prefer"] + " " + t["why"]},
                      ensure_ascii=False, indent=2) + "\n"


def _csv(kit: Kit, t: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["sender", "kind", "type", "value", "host", "resolved_at"])
    for s in kit.senders:
        for domain in s.dkim_domains:
            writer.writerow([s.name, s.kind, "dkim_domain", domain, "", ""])
        if s.spf_include:
            writer.writerow([s.name, s.kind, "spf_include", s.spf_include, "", ""])
        for ip in s.ips:
            writer.writerow([s.name, s.kind, "ip", ip, "", ""])
        for host in s.hosts:
            for ip in host.addresses:
                writer.writerow([s.name, s.kind, "ip", ip, host.name, iso_utc(host.resolved_at)])
    return out.getvalue()


def _ps(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"  # a PowerShell single-quoted string


def _m365(kit: Kit, t: dict) -> str:
    lines = [f"# {_title(kit, t)}", f"# {t['prefer']}", "", f"# {t['auth_rule']}: {t['m365_auth']}"]
    if kit.dkim_domains:
        domains = ",".join(_ps(d) for d in kit.dkim_domains)
        name = _ps(f"Postbote: authenticated mail from {', '.join(kit.dkim_domains)}"[:64])
        lines.append(f"New-TransportRule -Name {name} -SenderDomainIs {domains} "
                     f"-HeaderContainsMessageHeader 'Authentication-Results' -HeaderContainsWords 'dmarc=pass' "
                     f"-SetSCL -1")
    lines += ["", f"# {t['ip_rule']}: {t['m365_ip']}"]
    if kit.ips:
        lines.append("Set-HostedConnectionFilterPolicy -Identity Default -IPAllowList @{Add="
                     + ",".join(_ps(ip) for ip in kit.ips) + "}")
    return "\n".join(lines) + "\n"


def _google(kit: Kit, t: dict) -> str:
    steps = [s.format(domains=", ".join(kit.dkim_domains) or t["none"], ips=", ".join(kit.ips) or t["none"])
             for s in t["google_steps"]]
    return "\n".join([_title(kit, t), "", t["prefer"], ""] + [f"{i}. {s}" for i, s in enumerate(steps, 1)]) + "\n"


def _cidr(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    return f"{address}/{address.max_prefixlen}"


def _postfix(kit: Kit, t: dict) -> str:
    lines = [f"# {_title(kit, t)}", f"# {t['auth_rule']}: {t['postfix_auth'].format(domains=', '.join(kit.dkim_domains))}",
             "", f"# {t['ip_rule']}: {t['postfix_ip']}", "# /etc/postfix/postbote_clients.cidr"]
    lines += [f"{_cidr(ip)} OK" for ip in kit.ips]
    lines += ["", f"# {t['postfix_use']}",
              "# smtpd_client_restrictions = check_client_access cidr:/etc/postfix/postbote_clients.cidr, ..."]
    return "\n".join(lines) + "\n"


def _exim(kit: Kit, t: dict) -> str:
    domains = " : ".join(kit.dkim_domains)
    hosts = " ; ".join(kit.ips)  # '<;' makes ';' the separator, so IPv6 colons need no doubling
    return "\n".join([
        f"# {_title(kit, t)}",
        "# --- main section ---",
        f"domainlist postbote_dkim_domains = {domains}" if domains else "domainlist postbote_dkim_domains =",
        f"hostlist postbote_senders = <; {hosts}" if hosts else "hostlist postbote_senders =",
        f"dkim_verify_signers = $dkim_signers : {domains}" if domains else "",
        "acl_smtp_dkim = acl_postbote_dkim",
        "",
        "# --- after 'begin acl' ---",
        f"# {t['auth_rule']}: {t['exim_auth']}",
        "acl_postbote_dkim:",
        "  warn    dkim_signers = +postbote_dkim_domains",
        "          dkim_status  = pass",
        "          set acl_m_postbote_trusted = yes",
        "  accept",
        "",
        "# in acl_smtp_data, before the spam checks:",
        "#  accept  condition = ${if eq{$acl_m_postbote_trusted}{yes}}",
        "",
        f"# {t['ip_rule']}: {t['exim_ip']}",
        "# in acl_smtp_rcpt, before the blocklist checks:",
        "#  accept  hosts   = +postbote_senders",
        "#          domains = +local_domains",
    ]) + "\n"


def _spf(kit: Kit, t: dict) -> str:
    lines = [f"# {_title(kit, t)}", f"# {t['spf_intro']}"]
    for s in kit.senders:
        if s.spf_include:
            lines.append(f"include:{s.spf_include}  # {s.name}")
    for domain in kit.tenant_domains:
        lines += ["", f"# {t['spf_note'].format(domain=domain)}"]
        for s in kit.senders:
            if s.kind == "partner" and s.spf_include:
                lines.append(f"# include:{s.spf_include} — {t['spf_partner'].format(domain=domain, partner=s.name)}")
    return "\n".join(lines) + "\n"


FORMATS: dict[str, Callable[[Kit, dict], str]] = {
    "text": _text, "json": _json, "csv": _csv, "m365": _m365, "google": _google,
    "postfix": _postfix, "exim": _exim, "spf": _spf,
}
