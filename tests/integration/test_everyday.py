"""What a first user does every day, through the CLI as a real process (and the API): ids, keys
and records that can be copied, listing tenants and messages, exit codes, flags, and replies that
are no replies."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest
from fastapi.testclient import TestClient

from postbote import __version__
from postbote.api import create_api
from postbote.tenants import add_tenant, create_key
from tests.conftest import MX1
from tests.integration.test_cli import cli_env, postbote

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def in_terminal(env, cwd, *args, columns=40) -> str:
    """Run postbote in a pseudo-terminal ``columns`` wide: what a person sees, escapes removed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {**env, "COLUMNS": str(columns), "TERM": "xterm-256color"}
    process = subprocess.Popen([sys.executable, "-m", "postbote", *args], env=env, cwd=cwd,
                               stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert process.wait(timeout=60) == 0, b"".join(chunks).decode(errors="replace")
    return _ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


def _lines_holding(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_ids_keys_and_records_are_never_wrapped_in_a_narrow_terminal(make_app, zone, tmp_path):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    env = cli_env(make_app())
    postbote(env, tmp_path, "tenant", "add", "acme", "--display-name", "ACME GmbH")
    key_screen = in_terminal(env, tmp_path, "tenant", "key", "acme")
    key = re.search(r"pb_[A-Za-z0-9_-]+", key_screen).group(0)
    assert len(key) == 46, key_screen  # the whole key on one line: pb_ and 43 characters
    sent = in_terminal(env, tmp_path, "send", "--tenant", "acme", "--from", "hr@acme.test", "--to", "anna@beispiel.test",
                       "--subject", "Willkommen", "--text", "Hallo")
    found = re.search(r"message ([0-9a-f]+)", sent)
    assert found and len(found.group(1)) == 28, sent
    message_id = found.group(1)
    status = in_terminal(env, tmp_path, "status", message_id)
    assert _lines_holding(status, message_id) and _lines_holding(status, "anna@beispiel.test"), status
    listed = in_terminal(env, tmp_path, "message", "list")
    assert _lines_holding(listed, message_id), listed
    added = json.loads(postbote(env, tmp_path, "domain", "add", "acme.test", "--tenant", "acme", "--json").stdout)
    records = in_terminal(env, tmp_path, "domain", "records", "acme.test")
    for record in added["records"]:
        value = record.get("value") or record["expected"]
        assert _lines_holding(records, record["name"] + "."), records
        assert _lines_holding(records, value), (value, records)
    # Piped, with a narrow COLUMNS (as in a CI log or `| less`): the same.
    piped = postbote({**env, "COLUMNS": "30"}, tmp_path, "status", message_id).stdout
    assert _lines_holding(piped, message_id), piped


def test_help_shows_flags_as_flags_and_version_is_printed(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBOTE_")}
    env.update(POSTBOTE_CONFIG="postbote.toml", COLUMNS="120")
    for command in (["send"], ["status"], ["worker"], ["domain", "records"], ["message", "list"], ["tenant", "list"]):
        shown = postbote(env, tmp_path, *command, "--help").stdout
        assert "--json" in shown and "<bool>" not in shown, (command, shown)
    assert postbote(env, tmp_path, "--version").stdout.strip() == f"postbote {__version__}"


def test_exit_codes_are_the_readmes(make_app, tmp_path):
    env = cli_env(make_app())
    postbote(env, tmp_path, "tenant", "add", "acme")
    taken_tenant = postbote(env, tmp_path, "tenant", "add", "acme", check=False)
    taken_json = postbote(env, tmp_path, "tenant", "add", "acme", "--json", check=False)
    unknown_state = postbote(env, tmp_path, "message", "list", "--state", "lost", check=False)
    assert (taken_tenant.returncode, taken_json.returncode, unknown_state.returncode) == (2, 2, 2)
    assert "error[tenant_exists]" in taken_tenant.stderr  # a name taken is bad input: 2, as the README says
    assert json.loads(taken_json.stdout)["error"]["code"] == "tenant_exists"
    assert "error[state_invalid]" in unknown_state.stderr and "hint:" in unknown_state.stderr


def test_tenant_list(make_app, tmp_path):
    env = cli_env(make_app())
    assert json.loads(postbote(env, tmp_path, "tenant", "list", "--json").stdout) == []
    postbote(env, tmp_path, "tenant", "add", "globex")
    postbote(env, tmp_path, "tenant", "add", "acme", "--display-name", "ACME GmbH")
    postbote(env, tmp_path, "tenant", "key", "acme")
    postbote(env, tmp_path, "tenant", "policy", "globex", "hold")
    listed = json.loads(postbote(env, tmp_path, "tenant", "list", "--json").stdout)
    assert [(t["name"], t["display_name"], t["sender_policy"], t["api_keys"]) for t in listed] == [
        ("acme", "ACME GmbH", "fallback", 1), ("globex", "globex", "hold", 0)]
    table = postbote(env, tmp_path, "tenant", "list").stdout
    assert "ACME GmbH" in table and "hold" in table


def _send(env, cwd, tenant, *to, subject="Hallo"):
    args = ["send", "--tenant", tenant, "--from", f"hr@{tenant}.test", "--subject", subject, "--text", "t", "--json"]
    for address in to:
        args += ["--to", address]
    return json.loads(postbote(env, cwd, *args).stdout)["id"]


def test_message_list_by_recipient_and_state_in_pages(make_app, zone, tmp_path):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app()
    env = cli_env(app)
    for name in ("acme", "globex"):
        postbote(env, tmp_path, "tenant", "add", name)
    sent = [_send(env, tmp_path, "acme", f"person{i}@beispiel.test", subject=f"m{i}") for i in range(5)]
    to_anna = _send(env, tmp_path, "acme", "Anna.Schmidt@beispiel.test", "bob@beispiel.test")
    other = _send(env, tmp_path, "globex", "anna.schmidt@beispiel.test")
    postbote(env, tmp_path, "tenant", "policy", "acme", "hold")
    postbote(env, tmp_path, "domain", "add", "acme.test", "--tenant", "acme")
    held = _send(env, tmp_path, "acme", "carl@beispiel.test")

    def page(*args):
        return json.loads(postbote(env, tmp_path, "message", "list", "--json", *args).stdout)

    everything = page("--tenant", "acme")
    assert [m["id"] for m in everything["messages"]] == [held, to_anna, *reversed(sent)]
    assert everything["next_cursor"] is None
    # Pages of two, following the cursor: every message once, newest first.
    seen, cursor = [], None
    while True:
        got = page("--tenant", "acme", "--limit", "2", *(["--cursor", cursor] if cursor else []))
        seen += [m["id"] for m in got["messages"]]
        cursor = got["next_cursor"]
        if cursor is None:
            break
    assert seen == [m["id"] for m in everything["messages"]]
    by_recipient = page("--tenant", "acme", "--recipient", "ANNA.schmidt")
    assert [m["id"] for m in by_recipient["messages"]] == [to_anna]
    assert by_recipient["messages"][0]["recipients"] == [{"address": "Anna.Schmidt@beispiel.test", "state": "queued"},
                                                        {"address": "bob@beispiel.test", "state": "queued"}]
    assert [m["id"] for m in page("--recipient", "anna.schmidt")["messages"]] == [other, to_anna]  # every tenant
    assert [m["id"] for m in page("--state", "held")["messages"]] == [held]
    assert page("--recipient", "%")["messages"] == []  # a LIKE wildcard is a character, not "anything"
    bad = postbote(env, tmp_path, "message", "list", "--cursor", "'; drop table messages", "--json", check=False)
    assert bad.returncode == 2 and json.loads(bad.stdout)["error"]["code"] == "cursor_invalid"
    text = postbote(env, tmp_path, "message", "list", "--tenant", "acme", "--limit", "1").stdout
    assert held in text and f"--cursor {held}" in text


def test_message_list_over_the_api_is_per_tenant_and_paginated(make_app, zone):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app()
    keys = {name: create_key(app.engine, add_tenant(app.engine, name)) for name in ("acme", "globex")}
    client = TestClient(create_api(app))
    headers = {name: {"Authorization": f"Bearer {key}"} for name, key in keys.items()}
    ids = []
    for i in range(3):
        body = {"from": "hr@acme.test", "to": [f"p{i}@beispiel.test"], "subject": f"s{i}", "text": "t"}
        ids.append(client.post("/v1/messages", json=body, headers=headers["acme"]).json()["id"])
    client.post("/v1/messages", json={"from": "hr@globex.test", "to": ["p0@beispiel.test"], "subject": "g", "text": "t"},
                headers=headers["globex"])
    first = client.get("/v1/messages", params={"limit": 2}, headers=headers["acme"]).json()
    assert [m["id"] for m in first["messages"]] == [ids[2], ids[1]] and first["next_cursor"] == ids[1]
    rest = client.get("/v1/messages", params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers["acme"]).json()
    assert [m["id"] for m in rest["messages"]] == [ids[0]] and rest["next_cursor"] is None
    found = client.get("/v1/messages", params={"recipient": "p0@", "state": "queued"}, headers=headers["acme"]).json()
    assert [m["id"] for m in found["messages"]] == [ids[0]]  # globex's message to p0 is not acme's to see
    assert found["messages"][0]["tenant"] == "acme"
    for params, code in (({"state": "nope"}, "state_invalid"), ({"limit": 0}, "limit_invalid"),
                         ({"limit": 100000}, "limit_invalid"), ({"cursor": "x"}, "cursor_invalid")):
        response = client.get("/v1/messages", params=params, headers=headers["acme"])
        assert response.status_code == 422 and response.json()["error"]["code"] == code
    assert client.get("/v1/messages").status_code == 401


@pytest.mark.parametrize("given", ["", "   ", "hello there", "asdf;qwer"])
def test_empty_or_meaningless_input_is_unknown_with_a_hint(given, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBOTE_")}
    env.update(POSTBOTE_CONFIG="postbote.toml", POSTBOTE_DATABASE_URL=f"sqlite:///{tmp_path}/none.db")
    out = json.loads(postbote(env, tmp_path, "explain", "--reply", given, "--json").stdout)
    assert out["category"] == "unknown" and out["hint"] and "550" in out["hint"]
    assert "retr" not in (out["cause"] + out["fix"]).lower()  # no "will retry" promise about nothing
    text = postbote(env, tmp_path, "explain", "--reply", given, "--lang", "de").stdout
    assert "unknown" in text and "hint:" in text
    # A failure that got no reply at all still reads as one.
    refused = json.loads(postbote(env, tmp_path, "explain", "--reply", "Connection refused", "--json").stdout)
    assert refused["category"] == "unavailable"


def test_batch_answers_every_line_in_order_blank_ones_too(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBOTE_")}
    env.update(POSTBOTE_CONFIG="postbote.toml", POSTBOTE_DATABASE_URL=f"sqlite:///{tmp_path}/none.db")
    lines = ["550 5.1.1 <a@b.example>: User unknown", "", "450 4.2.0 Greylisted", "   ", "{broken", "nonsense words",
             "", "", "452 4.2.2 Mailbox full", "550 5.7.1 blocked", ""]
    batch = subprocess.run([sys.executable, "-m", "postbote", "explain", "-"], input="\n".join(lines) + "\n",
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert batch.returncode == 0, batch.stderr
    out = [json.loads(line) for line in batch.stdout.splitlines()]
    assert len(out) == len(lines) == 11
    # Each answer belongs to its line, in order: blank lines are empty replies, the broken JSON
    # line is an error, every other answer quotes the reply it explains.
    for line, answer in zip(lines, out):
        if not line.strip():
            assert answer["rule"] == "input.empty" and answer["category"] == "unknown", answer
        elif line.startswith("{"):
            assert answer["error"]["code"] == "line_invalid"
        else:
            assert answer["reply"].split()[0] == line.split()[0], (line, answer)
    assert out[5]["rule"] == "input.unreadable" and out[0]["category"] == "invalid_recipient"


def test_configuration_mistakes_are_one_error_without_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBOTE_")}
    (tmp_path / "broken.toml").write_text('DATABASE_URL = "sqlite:///x.db"\nSMTP_PORT = [25\n')
    (tmp_path / "misspelt.toml").write_text('HELO_NAEM = "out.example.com"\n')
    for config, expected in (("broken.toml", "broken.toml, line 2: the file is not valid TOML"),
                             ("misspelt.toml", "line 1: HELO_NAEM is not a setting. Did you mean HELO_NAME?"),
                             ("missing.toml", "missing.toml named by POSTBOTE_CONFIG does not exist")):
        result = postbote({**env, "POSTBOTE_CONFIG": str(tmp_path / config)}, tmp_path, "tenant", "list", check=False)
        assert result.returncode == 1, result.stderr
        assert "error[config_invalid]" in result.stderr and expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) <= 4, result.stderr
    written = postbote({**env, "POSTBOTE_CONFIG": str(tmp_path / "new.toml"),
                        "POSTBOTE_DATABASE_URL": f"sqlite:///{tmp_path}/p.db"}, tmp_path, "init")
    assert (tmp_path / "new.toml").exists(), written.stdout  # init writes the file it was pointed at


def test_verify_and_check_tell_the_platforms_gap_from_the_customers(make_app, zone, tmp_path):
    from tests.support.mail import it_team_publishes

    app = make_app()
    env = {**cli_env(app), "COLUMNS": "200"}
    postbote(env, tmp_path, "tenant", "add", "acme")
    added = json.loads(postbote(env, tmp_path, "domain", "add", "acme.test", "--tenant", "acme", "--json").stdout)
    it_team_publishes(zone, added["records"])  # the tenant's CNAMEs exactly right; the platform zone not published
    zone.add("acme.test", "TXT", '"v=spf1 ~all"')
    verified = postbote(env, tmp_path, "domain", "verify", "acme.test").stdout
    for selector in ("pb1", "pb2"):
        line = next(line for line in verified.splitlines() if line.startswith(f"{selector}._domainkey.acme.test is right"))
        assert "postbote platform publish" in line and "Nothing to change at your side" in line, verified
    assert "not to" not in verified and "your IT team" not in verified, verified
    as_json = json.loads(postbote(env, tmp_path, "domain", "verify", "acme.test", "--json").stdout)
    assert as_json["state"] == "pending"  # waiting for the platform is not a customer's failure
    assert {r["cause"] for r in as_json["records"] if "_domainkey" in r["name"]} == {"platform_not_published"}
    checked = postbote(env, tmp_path, "domain", "check", "acme.test").stdout
    assert "Publish: pb1._domainkey" not in checked and "publish pb1._domainkey" not in checked, checked
    assert "postbote platform publish" in checked.splitlines()[0], checked  # the verdict itself says whose move
    assert "are right" in checked and "are wrong" not in checked, checked
    assert "pbmail.acme.test is right" in checked and "Publish pbmail" not in checked, checked  # SPF: the platform's gap
    # A record that points elsewhere is the customer's to fix, and says so.
    zone.remove("pb1._domainkey.acme.test", "CNAME")
    zone.add("pb1._domainkey.acme.test", "CNAME", "pb1.somewhere-else.test.")
    elsewhere = postbote(env, tmp_path, "domain", "verify", "acme.test").stdout
    target = next(r["value"] for r in added["records"] if r["name"] == "pb1._domainkey.acme.test")
    assert f"pb1._domainkey.acme.test points to pb1.somewhere-else.test, not to {target}" in elsewhere, elsewhere
    checked = postbote(env, tmp_path, "domain", "check", "acme.test").stdout
    assert f"Publish: pb1._domainkey.acme.test CNAME {target}." in checked, checked


def test_explain_speaks_the_language_asked_for_states_and_sender_too(make_app, zone, smtp_port, tmp_path):
    from postbote.testing import Receiver
    from tests.conftest import run_worker

    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    app = make_app()
    env = {**cli_env(app), "COLUMNS": "250"}
    postbote(env, tmp_path, "tenant", "add", "acme", "--display-name", "ACME GmbH")
    message_id = _send(env, tmp_path, "acme", "anna@beispiel.test")
    with Receiver(MX1, smtp_port):
        run_worker(app)
    for lang, state, sender, note in (("de", "zugestellt", "Absender:", "ist keine bestätigte Absenderdomain Ihres Unternehmens"),
                                      ("es", "entregado", "remitente:", "no es un dominio remitente verificado de su empresa")):
        for command in ("explain", "status"):
            shown = postbote(env, tmp_path, command, message_id, "--lang", lang).stdout
            assert state in shown and sender in shown and note in shown, shown
            assert not re.search(r"\bdelivered\b|(?<![A-Za-z])sender:|asked for", shown), shown
