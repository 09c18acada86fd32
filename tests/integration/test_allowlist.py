"""The allowlist kit, checked by the systems it is written for: Postfix's postmap reads its table,
Exim reads its configuration and plays an SMTP session with it, pyspf evaluates its SPF, and the
PowerShell is parsed. Partner hosts are resolved against the loopback DNS server."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from postbote.allowlist import FORMATS, LANGUAGES, build_kit, render
from postbote.api import create_api
from postbote.domain_service import add, verify
from postbote.tenants import add_tenant, create_key
from tests.conftest import IN_CI, MX1, SOURCE_IPS
from tests.support.mail import it_team_publishes, publish_to_zone, spf_passes

ROOT = Path(__file__).resolve().parents[2]
EXIM = Path(os.environ.get("POSTBOTE_TEST_EXIM", ROOT / "var/tools/exim/usr/sbin/exim4"))
PARTNER = {"name": "SignIt", "ips": ["198.51.100.5"], "hosts": ["mta1.signit.test", "mta2.signit.test"],
           "spf_include": "_spf.signit.test", "dkim_selector": "signit"}


@pytest.fixture
def kit_app(make_app, zone):
    zone.mail_domain("acme.test", (10, "mx.acme.test", MX1))
    zone.add("mta1.signit.test", "A", "127.0.0.31")
    zone.add("mta1.signit.test", "AAAA", "::1")
    app = make_app(PARTNERS=[PARTNER])
    acme = add_tenant(app.engine, "acme", "ACME GmbH")
    globex = add_tenant(app.engine, "globex", "Globex AG")
    records = add(app, acme.id, "acme.test")["records"]
    publish_to_zone(zone, app)
    it_team_publishes(zone, records)
    assert verify(app, "acme.test", acme.id)["state"] == "verified"
    return app, acme, globex


def _kit(app, tenant=None):
    import asyncio

    return asyncio.run(build_kit(app.engine, app.resolver, app.settings, tenant_id=tenant.id if tenant else None,
                                 tenant_name=tenant.display_name if tenant else None))


def test_the_kit_names_every_sender_address_and_identity(kit_app):
    app, acme, _ = kit_app
    data = json.loads(render(_kit(app, acme), "json"))
    assert data["tenant"] == "ACME GmbH" and data["tenant_domains"] == ["acme.test"]
    platform, partner = data["senders"]
    assert platform["ips"] == SOURCE_IPS and platform["spf_include"] == "rp.platform.test"
    assert platform["dkim_domains"] == ["acme.test", "platform.test"]
    assert partner["name"] == "SignIt" and partner["dkim_domains"] == ["acme.test"]
    resolved = {h["name"]: h for h in partner["hosts"]}
    assert resolved["mta1.signit.test"]["addresses"] == ["127.0.0.31", "::1"]
    assert resolved["mta1.signit.test"]["resolved_at"].endswith("Z") and resolved["mta1.signit.test"]["error"] is None
    assert resolved["mta2.signit.test"]["addresses"] == [] and resolved["mta2.signit.test"]["error"]
    assert data["ips"] == [*SOURCE_IPS, "198.51.100.5", "127.0.0.31", "::1"]
    assert data["prefer"] == "authenticated"


def test_without_a_tenant_no_company_domain_is_named(kit_app):
    app, _, _ = kit_app
    data = json.loads(render(_kit(app), "json"))
    assert data["tenant"] is None and data["dkim_domains"] == ["platform.test"]


def test_every_format_in_every_language(kit_app):
    app, acme, _ = kit_app
    kit = _kit(app, acme)
    for fmt in FORMATS:
        outputs = {lang: render(kit, fmt, lang) for lang in LANGUAGES}
        for lang, out in outputs.items():
            assert not re.search(r"\{(who|at|domains|ips|domain|partner|error)\}", out), (fmt, lang)
            if fmt not in ("spf",):
                assert "127.0.0.20" in out, (fmt, lang)
        if fmt in ("text", "google", "m365", "postfix"):
            assert len(set(outputs.values())) == 3, fmt  # really translated


def test_csv_rows_are_complete(kit_app):
    app, acme, _ = kit_app
    rows = list(csv.DictReader(io.StringIO(render(_kit(app, acme), "csv"))))
    ips = {(r["sender"], r["value"], r["host"]) for r in rows if r["type"] == "ip"}
    assert ("SignIt", "127.0.0.31", "mta1.signit.test") in ips and ("Postbote", "127.0.0.21", "") in ips
    assert {r["value"] for r in rows if r["type"] == "dkim_domain"} == {"acme.test", "platform.test"}


def test_postfix_reads_the_client_access_table(kit_app, tmp_path):
    postmap = shutil.which("postmap") or "/usr/sbin/postmap"
    if not os.path.exists(postmap):
        _missing("postmap (Debian package postfix)")
    app, acme, _ = kit_app
    table = tmp_path / "postbote_clients.cidr"
    table.write_text(render(_kit(app, acme), "postfix"))
    (tmp_path / "main.cf").write_text("compatibility_level = 3.6\n")  # postmap reads a main.cf: an empty one
    query = [postmap, "-c", str(tmp_path), "-q"]
    for ip in ("127.0.0.20", "127.0.0.31", "198.51.100.5", "::1"):
        found = subprocess.run([*query, ip, f"cidr:{table}"], capture_output=True, text=True)
        assert found.stdout.strip() == "OK", (ip, found.stderr)
    stranger = subprocess.run([*query, "127.0.0.99", f"cidr:{table}"], capture_output=True, text=True)
    assert stranger.returncode == 1 and stranger.stdout == ""


@pytest.fixture
def exim_dir():
    """Exim runs an untrusted configuration as nobody: its spool and log need a folder it may write."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="postbote-exim-") as folder:
        os.chmod(folder, 0o777)
        yield Path(folder)


def _exim_config(tmp_path: Path, snippet: str) -> Path:
    main, acl = snippet.split("# --- after 'begin acl' ---")
    (tmp_path / "spool").mkdir(mode=0o777)
    os.chmod(tmp_path / "spool", 0o777)
    config = tmp_path / "exim.conf"
    config.write_text("\n".join([
        "primary_hostname = mx.kunde.test", "exim_user = nobody", "exim_group = nogroup",
        f"spool_directory = {tmp_path}/spool", f"log_file_path = {tmp_path}/%slog",
        "domainlist local_domains = kunde.test", "acl_smtp_rcpt = acl_check_rcpt", "acl_smtp_data = acl_check_data",
        main, "begin acl", acl,
        "acl_check_rcpt:",
        *[line[1:] for line in acl.splitlines() if line.startswith("#  ") and "hosts" in line or "domains = +local" in line],
        "  deny    message = not on the list",
        "acl_check_data:",
        "  accept  condition = ${if eq{$acl_m_postbote_trusted}{yes}}",
        "  accept",
    ]) + "\n")
    return config


def test_exim_reads_the_snippet_and_lets_only_the_listed_hosts_in(kit_app, exim_dir):
    tmp_path = exim_dir
    if not EXIM.exists():
        _missing("exim4 (scripts/install-system-deps unpacks it into var/tools/exim)")
    app, acme, _ = kit_app
    config = _exim_config(tmp_path, render(_kit(app, acme), "exim"))
    checked = subprocess.run([str(EXIM), "-C", str(config), "-bV"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    session = "EHLO out.platform.test\r\nMAIL FROM:<bounces@rp.platform.test>\r\nRCPT TO:<anna@kunde.test>\r\nQUIT\r\n"
    for ip, code in (("127.0.0.20", "250"), ("127.0.0.31", "250"), ("127.0.0.99", "550")):
        played = subprocess.run([str(EXIM), "-C", str(config), "-bh", ip], input=session, capture_output=True, text=True)
        rcpt = [line for line in played.stdout.splitlines() if re.match(r"^\d{3}[ -]", line)][-2]
        assert rcpt.startswith(code), (ip, played.stdout)


def test_exim_refuses_a_broken_snippet(kit_app, exim_dir):
    tmp_path = exim_dir
    # The check above can fail: a snippet with a typo is refused by Exim, with its line.
    if not EXIM.exists():
        _missing("exim4 (scripts/install-system-deps unpacks it into var/tools/exim)")
    app, acme, _ = kit_app
    broken = render(_kit(app, acme), "exim").replace("dkim_status  = pass", "dkim_stat = pass")
    checked = subprocess.run([str(EXIM), "-C", str(_exim_config(tmp_path, broken)), "-bV"], capture_output=True, text=True)
    assert checked.returncode != 0 and "dkim_stat" in checked.stdout + checked.stderr


def test_the_spf_mechanisms_pass_for_the_senders(kit_app, zone):
    app, acme, _ = kit_app
    mechanisms = [line.split()[0] for line in render(_kit(app, acme), "spf").splitlines() if line.startswith("include:")]
    assert mechanisms == ["include:rp.platform.test", "include:_spf.signit.test"]
    zone.add("_spf.signit.test", "TXT", '"v=spf1 ip4:198.51.100.5 -all"')
    zone.add("trusting.test", "TXT", f'"v=spf1 {" ".join(mechanisms)} -all"')
    assert spf_passes(app, "127.0.0.20", "bounces@trusting.test") == "pass"
    assert spf_passes(app, "198.51.100.5", "bounces@trusting.test") == "pass"
    assert spf_passes(app, "127.0.0.99", "bounces@trusting.test") == "fail"


# The cmdlets and parameters Microsoft documents for them (Exchange Online PowerShell).
_CMDLETS = {"New-TransportRule": {"Name", "SenderDomainIs", "HeaderContainsMessageHeader", "HeaderContainsWords", "SetSCL"},
            "Set-HostedConnectionFilterPolicy": {"Identity", "IPAllowList"}}
_TOKEN = re.compile(r"""\s*(?:(?P<param>-[A-Za-z]+)|(?P<hash>@\{Add=(?P<add>(?:'(?:[^']|'')*',?)+)\})|"""
                    r"""(?P<list>(?:'(?:[^']|'')*',?)+)|(?P<int>-?\d+)|(?P<word>[A-Za-z][\w-]*))""")


def _parse_powershell(line: str) -> tuple[str, dict[str, object]]:
    cmdlet, rest = line.split(" ", 1)
    params: dict[str, object] = {}
    position, current = 0, None
    while position < len(rest):
        match = _TOKEN.match(rest, position)
        assert match and match.end() > position, f"cannot parse at {rest[position:]!r}"
        position = match.end()
        if match["param"]:
            current = match["param"][1:]
            params[current] = True
            continue
        assert current, "a value without a parameter"
        text = match["add"] or match["list"]
        if text:
            params[current] = [v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", text)]
        else:
            params[current] = int(match["int"]) if match["int"] else match["word"]
        current = None
    return cmdlet, params


def test_the_microsoft_365_commands_parse_with_documented_parameters(kit_app):
    app, acme, _ = kit_app
    commands = [l for l in render(_kit(app, acme), "m365").splitlines() if l and not l.startswith("#")]
    parsed = dict(_parse_powershell(c) for c in commands)
    assert set(parsed) == set(_CMDLETS)
    for cmdlet, params in parsed.items():
        assert set(params) <= _CMDLETS[cmdlet], (cmdlet, set(params) - _CMDLETS[cmdlet])
    rule = parsed["New-TransportRule"]
    assert rule["SenderDomainIs"] == ["acme.test", "platform.test"] and rule["SetSCL"] == -1
    assert rule["HeaderContainsWords"] == ["dmarc=pass"]
    assert parsed["Set-HostedConnectionFilterPolicy"]["IPAllowList"] == [*SOURCE_IPS, "198.51.100.5", "127.0.0.31", "::1"]


def test_the_powershell_parser_refuses_what_powershell_would(kit_app):
    with pytest.raises(AssertionError):
        _parse_powershell("Set-HostedConnectionFilterPolicy -Identity Default -IPAllowList @{Add='1.2.3.4")


def test_google_workspace_steps_name_domains_and_addresses(kit_app):
    app, acme, _ = kit_app
    for lang in LANGUAGES:
        steps = render(_kit(app, acme), "google", lang)
        assert "acme.test, platform.test" in steps and "127.0.0.20, 127.0.0.21" in steps
        assert re.search(r"^5\. ", steps, re.MULTILINE)


def test_the_api_gives_each_tenant_its_own_kit(kit_app):
    app, acme, globex = kit_app
    client = TestClient(create_api(app))
    a = {"Authorization": f"Bearer {create_key(app.engine, acme)}"}
    b = {"Authorization": f"Bearer {create_key(app.engine, globex)}"}
    mine = client.get("/v1/allowlist", headers=a).json()
    theirs = client.get("/v1/allowlist", headers=b).json()
    assert mine["tenant_domains"] == ["acme.test"] and theirs["tenant_domains"] == []
    assert "acme.test" not in json.dumps(theirs)
    text = client.get("/v1/allowlist", params={"format": "m365", "lang": "de"}, headers=a)
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert "Nachrichtenflussregel" in text.text
    assert client.get("/v1/allowlist", params={"format": "csv"}, headers=a).headers["content-type"].startswith("text/csv")
    wrong = client.get("/v1/allowlist", params={"format": "sendmail"}, headers=a)
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "format_unknown"
    assert client.get("/v1/allowlist").status_code == 401


def test_the_cli_prints_the_kit(kit_app):
    app, _, _ = kit_app
    env = {**os.environ, "POSTBOTE_DATABASE_URL": app.settings.DATABASE_URL,
           "POSTBOTE_DNS_NAMESERVERS": ",".join(app.settings.DNS_NAMESERVERS), "POSTBOTE_SOURCE_IPS": ",".join(SOURCE_IPS),
           "POSTBOTE_PLATFORM_DOMAIN": "platform.test", "POSTBOTE_HELO_NAME": "out.platform.test",
           "POSTBOTE_SECRET_KEY": "test-master-key-not-for-production"}
    ran = subprocess.run([sys.executable, "-m", "postbote", "allowlist", "--tenant", "acme", "--format", "exim"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert "domainlist postbote_dkim_domains = acme.test : platform.test" in ran.stdout
    assert "hostlist postbote_senders = <; 127.0.0.20 ; 127.0.0.21" in ran.stdout
    bad = subprocess.run([sys.executable, "-m", "postbote", "allowlist", "--format", "nope"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "format_unknown" in bad.stderr


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is missing")
    pytest.skip(f"{what} is missing")
