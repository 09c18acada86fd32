"""``postbote workflow …`` and ``postbote event send`` as an operator runs them: a real process."""

from __future__ import annotations

import json

from postbote.testing import Receiver
from tests.conftest import MX1
from tests.integration.test_cli import cli_env, postbote
from tests.integration.test_workflows import stage_workflow


def test_workflow_add_event_send_twice_worker(make_app, zone, smtp_port, tmp_path):
    zone.mail_domain("kandidaten.test", (10, "mx.kandidaten.test", MX1))
    env = cli_env(make_app())
    postbote(env, tmp_path, "tenant", "add", "acme", "--display-name", "ACME GmbH")
    (tmp_path / "flow.json").write_text(json.dumps(stage_workflow(domain=None)))
    saved = json.loads(postbote(env, tmp_path, "workflow", "add", "flow.json", "--tenant", "acme", "--json").stdout)
    assert saved["version"] == 1 and saved["senders"][0]["mode"] == "default_sender"
    args = ["event", "send", "candidate.stage_changed", "--tenant", "acme", "--key", "k-1",
            "--person", "candidate=lea@kandidaten.test", "--lang", "candidate=de", "--field", "stage=interview", "--json"]
    first = json.loads(postbote(env, tmp_path, *args).stdout)
    second = json.loads(postbote(env, tmp_path, *args).stdout)
    assert first["results"][0]["outcome"] == "sent" and second["duplicate"] is True
    with Receiver(MX1, smtp_port) as mx:
        postbote(env, tmp_path, "worker", "--until-done", "--timeout", "30")
    assert len(mx.messages) == 1
    listed = json.loads(postbote(env, tmp_path, "workflow", "list", "--tenant", "acme", "--json").stdout)
    assert [w["id"] for w in listed] == [saved["id"]]

    (tmp_path / "bad.json").write_text(json.dumps(stage_workflow(domain=None, conditions=[{"field": "x", "op": "eval"}])))
    refused = postbote(env, tmp_path, "workflow", "add", "bad.json", "--tenant", "acme", check=False)
    assert refused.returncode == 2 and "error[condition_invalid]" in refused.stderr and "hint:" in refused.stderr
