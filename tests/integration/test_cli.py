"""The command line as a user runs it: a real process, real settings from the environment."""

from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import sys
import time

import httpx

from tests.conftest import MX1, free_port
from postbote.testing import Receiver, Script


def cli_env(app) -> dict:
    s = app.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBOTE_")}
    env.update({
        "POSTBOTE_CONFIG": "postbote.toml",
        "POSTBOTE_DATABASE_URL": s.DATABASE_URL,
        "POSTBOTE_DNS_NAMESERVERS": ",".join(s.DNS_NAMESERVERS),
        "POSTBOTE_SMTP_PORT": str(s.SMTP_PORT),
        "POSTBOTE_SOURCE_IPS": ",".join(s.SOURCE_IPS),
        "POSTBOTE_HELO_NAME": s.HELO_NAME,
        "POSTBOTE_RETRY_SCHEDULE": "1s",
        "POSTBOTE_SECRET_KEY": s.SECRET_KEY,
        "POSTBOTE_PLATFORM_DOMAIN": s.PLATFORM_DOMAIN,
        "POSTBOTE_ALLOW_TEST_DOMAINS": "true",
        "POSTBOTE_ALLOW_PRIVATE_MX": "true",
    })
    return env


def postbote(env, cwd, *args, check=True):
    result = subprocess.run([sys.executable, "-m", "postbote", *args], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_init_tenant_send_worker_status(make_app, zone, smtp_port, tmp_path):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    env = cli_env(make_app())
    postbote(env, tmp_path, "init")
    assert len(re.findall(r"^RETRY_SCHEDULE =", (tmp_path / "postbote.toml").read_text(), re.MULTILINE)) == 1
    assert json.loads(postbote(env, tmp_path, "tenant", "add", "acme", "--display-name", "ACME GmbH", "--json").stdout) \
        == {"id": 1, "name": "acme", "display_name": "ACME GmbH"}
    key = json.loads(postbote(env, tmp_path, "tenant", "key", "acme", "--json").stdout)["api_key"]
    assert key.startswith("pb_") and len(key) > 40
    sent = json.loads(postbote(env, tmp_path, "send", "--tenant", "acme", "--from", "ACME <hr@acme.test>",
                               "--to", "anna@beispiel.test", "--to", "bob@beispiel.test",
                               "--subject", "Willkommen", "--text", "Hallo", "--json").stdout)
    assert [r["state"] for r in sent["recipients"]] == ["queued", "queued"]
    with Receiver(MX1, smtp_port) as mx:
        summary = json.loads(postbote(env, tmp_path, "worker", "--until-done", "--timeout", "30", "--json").stdout)
    assert summary["outcomes"] == {"delivered": 2}
    # One copy per recipient, each in its own transaction with only its own address.
    assert sorted(tuple(m.recipients) for m in mx.messages) == [("anna@beispiel.test",), ("bob@beispiel.test",)]
    status = json.loads(postbote(env, tmp_path, "status", sent["id"], "--json").stdout)
    assert [r["state"] for r in status["recipients"]] == ["delivered", "delivered"]
    assert status["recipients"][0]["history"][0]["source_ip"] in env["POSTBOTE_SOURCE_IPS"].split(",")
    table = postbote(env, tmp_path, "status", sent["id"]).stdout
    assert "anna@beispiel.test" in table and "delivered" in table


def test_errors_have_a_code_a_sentence_and_a_hint(make_app, tmp_path):
    env = cli_env(make_app())
    postbote(env, tmp_path, "tenant", "add", "acme")
    injected = postbote(env, tmp_path, "send", "--tenant", "acme", "--from", "hr@acme.test", "--to", "a@b.test",
                        "--subject", "Hi\nBcc: x@y.test", "--text", "t", check=False)
    assert injected.returncode == 2
    assert "error[header_injection]" in injected.stderr and "hint:" in injected.stderr
    missing = postbote(env, tmp_path, "status", "nope", "--json", check=False)
    assert missing.returncode == 2
    assert json.loads(missing.stdout)["error"]["code"] == "message_not_found"
    duplicate = postbote(env, tmp_path, "tenant", "add", "acme", "--json", check=False)
    assert json.loads(duplicate.stdout)["error"]["code"] == "tenant_exists"


def test_commands_refuse_an_uninitialised_store(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBOTE_")}
    env.update(POSTBOTE_CONFIG="postbote.toml", POSTBOTE_DATABASE_URL=f"sqlite:///{tmp_path}/empty.db")
    result = postbote(env, tmp_path, "tenant", "add", "acme", check=False)
    assert result.returncode == 1
    assert "error[store_unavailable]" in result.stderr and "postbote init" in result.stderr


def test_bad_setting_is_named(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBOTE_")}
    env.update(POSTBOTE_CONFIG="postbote.toml", POSTBOTE_SOURCE_IPS="127.0.0.20,not-an-ip")
    result = postbote(env, tmp_path, "init", check=False)
    assert result.returncode == 1
    assert "error[config_invalid]" in result.stderr and "SOURCE_IPS" in result.stderr


def test_serve_runs_the_api_and_delivers(make_app, zone, smtp_port, tmp_path):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    env = cli_env(make_app())
    port = free_port("127.0.0.1")
    env["POSTBOTE_API_LISTEN"] = f"127.0.0.1:{port}"
    postbote(env, tmp_path, "tenant", "add", "acme")
    key = json.loads(postbote(env, tmp_path, "tenant", "key", "acme", "--json").stdout)["api_key"]
    server = subprocess.Popen([sys.executable, "-m", "postbote", "serve"], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with Receiver(MX1, smtp_port) as mx, httpx.Client(base_url=f"http://127.0.0.1:{port}",
                                                         headers={"Authorization": f"Bearer {key}"}) as http:
            for _ in range(100):
                try:
                    http.get("/v1/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            sent = http.post("/v1/messages", json={"from": "hr@acme.test", "to": ["anna@beispiel.test"],
                                                   "subject": "Hallo", "text": "Willkommen"}).json()
            for _ in range(100):
                state = http.get(f"/v1/messages/{sent['id']}").json()["recipients"][0]["state"]
                if state == "delivered":
                    break
                time.sleep(0.1)
            assert state == "delivered" and len(mx.messages) == 1
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0, server.stderr.read()


def test_explain_a_reply_and_a_batch_without_a_store(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBOTE_")}
    env.update(POSTBOTE_CONFIG="postbote.toml", POSTBOTE_SOURCE_IPS="192.0.2.20", POSTBOTE_DATABASE_URL=f"sqlite:///{tmp_path}/none.db")
    one = json.loads(postbote(env, tmp_path, "explain", "--json", "--lang", "es", "--mx", "mx00.t-online.de", "--reply",
                              "554 IP=192.0.2.20 - A problem occurred. (Ask your postmaster for help or to contact tosa@rx.t-online.de to clarify.) (BL)").stdout)
    assert {k: one[k] for k in ("category", "temporary", "code", "enhanced_code", "provider", "retry_after", "lang")} == {
        "category": "blocklisted", "temporary": False, "code": 554, "enhanced_code": None, "provider": "t-online",
        "retry_after": None, "lang": "es"}
    assert "192.0.2.20" in one["fix"] and one["cause"].startswith("T-Online solo acepta")
    lines = [
        "450 4.2.0 <a@b.example>: Recipient address rejected: Greylisted",
        json.dumps({"reply": "550 5.4.1 Recipient address rejected: Access denied", "mx": "acme.mail.protection.outlook.com"}),
        "{broken json",
        "421 4.7.0 Error: too many connections from 192.0.2.20, try again in 10 minutes",
    ]
    batch = subprocess.run([sys.executable, "-m", "postbote", "explain", "-"], input="\n".join(lines) + "\n",
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert batch.returncode == 0, batch.stderr
    out = [json.loads(line) for line in batch.stdout.splitlines()]
    assert [o.get("category") for o in out] == ["greylisted", "invalid_recipient", None, "rate_limited"]
    assert out[2]["error"]["code"] == "line_invalid"
    assert out[3]["retry_after"] == 600 and out[1]["provider"] == "outlook"
    assert not (tmp_path / "none.db").exists()  # explaining a reply needs no store
    nothing = postbote(env, tmp_path, "explain", check=False)
    assert nothing.returncode == 2 and "error[explain_nothing]" in nothing.stderr


class UnknownX(Script):
    def rcpt(self, peer_ip, mail_from, recipient):
        if recipient.startswith("x@"):
            return f"550 5.1.1 <{recipient}>: Recipient address rejected: User unknown"
        return "250 OK"


def test_report_groups_outcomes(make_app, zone, smtp_port, tmp_path):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    env = cli_env(make_app())
    postbote(env, tmp_path, "tenant", "add", "acme")
    zone.mail_domain("kunde.test", (10, "mx.kunde.test", MX1))
    for to in ("anna@beispiel.test", "bob@beispiel.test", "x@kunde.test"):
        postbote(env, tmp_path, "send", "--tenant", "acme", "--from", "hr@acme.test", "--to", to, "--subject", "s", "--text", "t")
    with Receiver(MX1, smtp_port, UnknownX()):
        postbote(env, tmp_path, "worker", "--until-done", "--timeout", "30")
    report = json.loads(postbote(env, tmp_path, "report", "--since", "1h", "--json").stdout)
    assert report["outcomes"] == [
        {"destination": "beispiel.test", "state": "delivered", "category": None, "count": 2},
        {"destination": "kunde.test", "state": "bounced", "category": "invalid_recipient", "count": 1},
    ]
    table = postbote(env, tmp_path, "report").stdout
    assert "beispiel.test" in table and "invalid_recipient" in table
    bad = postbote(env, tmp_path, "report", "--since", "yesterday", check=False)
    assert bad.returncode == 2 and "error[duration_invalid]" in bad.stderr


def test_domain_commands(make_app, zone, tmp_path):
    env = cli_env(make_app())
    postbote(env, tmp_path, "tenant", "add", "acme", "--display-name", "ACME GmbH")
    added = json.loads(postbote(env, tmp_path, "domain", "add", "acme.test", "--tenant", "acme", "--json").stdout)
    assert added["state"] == "pending" and len(added["records"]) == 4
    records = json.loads(postbote(env, tmp_path, "domain", "records", "acme.test", "--json").stdout)
    assert {"name", "type", "value", "purpose", "status"} <= set(records[0]) and records[0]["status"] is None
    snippet = postbote(env, tmp_path, "domain", "records", "acme.test", "--zone").stdout
    signing = records[0]["value"]  # pb1.<this claim's token>.acme-test.dkim.platform.test
    assert signing.startswith("pb1.") and signing.endswith(".acme-test.dkim.platform.test")
    assert f"pb1._domainkey.acme.test. 3600 IN CNAME {signing}." in snippet
    platform = postbote(env, tmp_path, "platform", "zone").stdout
    assert f"{signing}. 3600 IN TXT \"v=DKIM1; k=rsa; p=" in platform
    assert "pb1._domainkey.platform.test. 3600 IN TXT" in platform and "rp.platform.test. 3600 IN MX 10 mx.platform.test." in platform
    assert "rp.platform.test. 3600 IN TXT \"v=spf1 ip4:127.0.0.20 ip4:127.0.0.21 -all\"" in platform
    verified = json.loads(postbote(env, tmp_path, "domain", "verify", "acme.test", "--json").stdout)
    assert verified["state"] == "pending" and {r["status"] for r in verified["records"]} == {"missing"}
    policy = json.loads(postbote(env, tmp_path, "tenant", "policy", "acme", "hold", "--json").stdout)
    assert policy == {"tenant": "acme", "sender_policy": "hold"}
    bad = postbote(env, tmp_path, "tenant", "policy", "acme", "sometimes", check=False)
    assert bad.returncode == 2 and "error[policy_invalid]" in bad.stderr
    taken = postbote(env, tmp_path, "domain", "add", "acme.test", "--tenant", "acme", check=False)
    assert taken.returncode == 2 and "error[domain_taken]" in taken.stderr  # bad input, as the README says
    assert "PRIVATE KEY" not in platform and env["POSTBOTE_SECRET_KEY"] not in platform + snippet
