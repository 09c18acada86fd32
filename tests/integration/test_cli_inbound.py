"""``postbote inbound parse`` as an operator runs it: a real process, no settings, no store."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.reports import dsn
from tests.support.sisimai import ROOT


def run(tmp_path, *args, stdin: bytes | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBOTE_")}
    env["COLUMNS"] = "240"  # one table row per recipient, unfolded
    return subprocess.run([sys.executable, "-m", "postbote", "inbound", "parse", *args], cwd=tmp_path, env=env,
                          input=stdin, capture_output=True, timeout=60)


def test_parse_prints_each_recipient_with_its_meaning(tmp_path):
    (tmp_path / "bounce.eml").write_bytes(dsn("anna@kunde.test"))
    qmail = ROOT / "eml" / "lhost-qmail-08.eml"  # tuning part
    result = run(tmp_path, "bounce.eml", str(qmail), "--json", "--lang", "de")
    assert result.returncode == 0, result.stderr
    first, second = json.loads(result.stdout)
    assert first["kind"] == "dsn" and first["file"] == "bounce.eml"
    [anna] = first["recipients"]
    assert (anna["address"], anna["action"], anna["status"], anna["category"], anna["temporary"]) == (
        "anna@kunde.test", "failed", "5.1.1", "invalid_recipient", False)
    assert anna["explanation"]["lang"] == "de" and "anna@kunde.test" in anna["explanation"]["cause"]
    assert second["kind"] == "bounce" and second["recipients"][0]["category"] == "mailbox_full"


def test_parse_reads_stdin_and_speaks_to_people(tmp_path):
    result = run(tmp_path, "-", stdin=dsn("lea@kunde.test"))
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert "dsn" in out and "lea@kunde.test" in out and "invalid_recipient" in out


def test_an_unreadable_file_is_an_error_and_the_others_are_still_read(tmp_path):
    (tmp_path / "ok.eml").write_bytes(dsn("tom@kunde.test"))
    result = run(tmp_path, "missing.eml", "ok.eml", "--json")
    assert result.returncode == 2
    missing, ok = json.loads(result.stdout)
    assert missing["error"]["code"] == "file_unreadable" and missing["error"]["hint"]
    assert ok["recipients"][0]["address"] == "tom@kunde.test"
    text = run(tmp_path, "missing.eml")
    assert text.returncode == 2 and b"error[file_unreadable]" in text.stderr


def test_an_unknown_language_is_refused(tmp_path):
    result = run(tmp_path, "x.eml", "--lang", "fr", "--json")
    assert result.returncode == 2 and json.loads(result.stdout)["error"]["code"] == "language_unknown"
