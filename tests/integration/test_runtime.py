"""The running system as a user starts it: `postbote worker` and `postbote serve` as real
processes — domain re-checks without serve, a taken API port, one log line per outcome, an EHLO
name that is no FQDN — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import pytest

from postbote.domain_service import add, verify
from postbote.domains import get_domain
from postbote.tenants import add_tenant
from postbote.testing import Receiver
from tests.conftest import MX1, free_port
from tests.integration.test_cli import cli_env, postbote
from tests.support.mail import it_team_publishes, publish_to_zone


def start(env, cwd, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "postbote", *args], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(process: subprocess.Popen) -> tuple[int, str, str]:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    return process.returncode, out, err


def test_a_worker_without_serve_rechecks_domains_on_schedule(make_app, zone, tmp_path):
    app = make_app()
    acme = add_tenant(app.engine, "acme", "ACME GmbH")
    records = add(app, acme.id, "acme.test")["records"]
    publish_to_zone(zone, app)
    it_team_publishes(zone, records)
    assert verify(app, "acme.test", acme.id)["state"] == "verified"
    zone.remove("pbmail.acme.test", "CNAME")  # the tenant's IT team breaks the return path
    env = cli_env(app) | {"POSTBOTE_DOMAIN_RECHECK_INTERVAL": "1s"}
    worker = start(env, tmp_path, "worker")
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and get_domain(app.engine, "acme.test").state.value != "broken":
            time.sleep(0.2)
        assert get_domain(app.engine, "acme.test").state.value == "broken"
        assert worker.poll() is None  # it keeps running: delivery and the schedule
    finally:
        code, _, err = stop(worker)
    assert code == 0, err
    assert "domain acme.test: verified -> broken" in err


def test_serve_with_its_api_port_taken_says_so_and_exits_every_time(make_app, tmp_path):
    env = cli_env(make_app())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        env["POSTBOTE_API_LISTEN"] = f"127.0.0.1:{taken.getsockname()[1]}"
        for _ in range(3):
            result = subprocess.run([sys.executable, "-m", "postbote", "serve"], env=env, cwd=tmp_path,
                                    capture_output=True, text=True, timeout=60)
            assert result.returncode == 1, result.stderr
            assert "Traceback" not in result.stderr + result.stdout
            assert "API on" not in result.stdout  # it never claimed to be up
            said = " ".join(result.stderr.split())  # one sentence and a hint, however the terminal wraps
            sentence, hint = said.split(" hint: ")
            assert sentence.startswith("error[api_port_taken]: The API address 127.0.0.1:")
            assert sentence.endswith("is already in use by another process.") and "API_LISTEN" in hint


def _outcome_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " postbote.delivery: " in line]


@pytest.mark.parametrize("command", ["worker", "serve"])
def test_each_delivery_outcome_is_one_log_line_at_info(make_app, zone, smtp_port, tmp_path, command):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    env = cli_env(make_app()) | {"POSTBOTE_LOG_LEVEL": "INFO",
                                 "POSTBOTE_API_LISTEN": f"127.0.0.1:{free_port('127.0.0.1')}"}
    postbote(env, tmp_path, "tenant", "add", "acme")
    sent = json.loads(postbote(env, tmp_path, "send", "--tenant", "acme", "--from", "hr@acme.test",
                               "--to", "anna@beispiel.test", "--to", "bob@beispiel.test",
                               "--subject", "Hallo", "--text", "Willkommen", "--json").stdout)
    with Receiver(MX1, smtp_port) as mx:
        process = start(env, tmp_path, command)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not mx.messages:
            time.sleep(0.1)
        time.sleep(0.5)
        _, _, err = stop(process)
    lines = _outcome_lines(err)
    assert len(lines) == 2, err
    for rcpt, line in zip(sorted(["anna@beispiel.test", "bob@beispiel.test"]), sorted(lines, key=lambda x: "bob" in x)):
        assert f"INFO postbote.delivery: delivered {sent['id']} to {rcpt} via mx1.beispiel.test[{MX1}]: 250 " in line


@pytest.mark.parametrize("command", ["worker", "serve"])
def test_an_ehlo_name_that_is_no_fqdn_is_refused_before_delivering(make_app, zone, smtp_port, tmp_path, command):
    zone.mail_domain("beispiel.test", (10, "mx1.beispiel.test", MX1))
    env = cli_env(make_app()) | {"POSTBOTE_HELO_NAME": "localhost",
                                 "POSTBOTE_API_LISTEN": f"127.0.0.1:{free_port('127.0.0.1')}"}
    postbote(env, tmp_path, "tenant", "add", "acme")
    postbote(env, tmp_path, "send", "--tenant", "acme", "--from", "hr@acme.test", "--to", "anna@beispiel.test",
             "--subject", "Hallo", "--text", "Willkommen")
    with Receiver(MX1, smtp_port) as mx:
        result = subprocess.run([sys.executable, "-m", "postbote", command, *(["--until-done"] if command == "worker" else [])],
                                env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    said = " ".join(result.stderr.split())
    assert "error[helo_name_invalid]: The EHLO name 'localhost' from HELO_NAME is not a fully qualified domain name" \
        in said
    assert "hint:" in said and "HELO_NAME" in said.split("hint:")[1]
    assert mx.connections == [] and "Traceback" not in result.stderr


def test_a_worker_without_serve_sends_delayed_workflow_mail(make_app, zone, smtp_port, tmp_path):
    import asyncio

    from postbote.workflows import Deps, handle_event, save_workflow
    from tests.integration.test_workflows import stage_event, stage_workflow

    zone.mail_domain("kandidaten.test", (10, "mx.kandidaten.test", MX1))
    app = make_app()
    acme = add_tenant(app.engine, "acme", "ACME GmbH")
    deps = Deps(app.engine, app.settings, app.resolver)
    asyncio.run(save_workflow(deps, acme, stage_workflow(domain=None, delay={"offset": "1s"})))
    answer = asyncio.run(handle_event(deps, acme, stage_event("c-later")))
    assert [r["outcome"] for r in answer["results"]] == ["delayed"]
    time.sleep(1.5)  # due now: the worker's first round of the workflow loop takes it
    with Receiver(MX1, smtp_port) as mx:
        worker = start(cli_env(app), tmp_path, "worker")
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not mx.messages:
                time.sleep(0.2)
        finally:
            code, _, err = stop(worker)
    assert code == 0, err
    assert len(mx.messages) == 1 and mx.messages[0].recipients == ("lea@kandidaten.test",)
