"""A bounce that comes after the receiving server's 250 — the usual case at Microsoft 365 — is
classified and explained from the report's status and diagnostic, and the timeline shows both the
250 and the later bounce: on SQLite and PostgreSQL, through the real bounce receiver."""

from __future__ import annotations

import json
import smtplib

import pytest

from postbote.compose import Draft
from postbote.explaining import message_story
from postbote.inbound import start_inbound
from postbote.sending import send
from postbote.tenants import add_tenant
from postbote.testing import Receiver
from postbote.views import message_json
from tests.conftest import MX1, MX3, run_worker
from tests.integration.test_cli import cli_env, postbote
from tests.support.reports import dsn


@pytest.fixture
def delivered(make_app, zone, smtp_port):
    zone.mail_domain("kunde.test", (10, "kunde-test.mail.protection.outlook.com", MX1))
    app = make_app()
    tenant = add_tenant(app.engine, "acme", "ACME GmbH")
    accepted = send(app.engine, app.settings, tenant,
                    Draft("hr@acme.test", ["anna@kunde.test", "lea@kunde.test"], "Willkommen", "Hallo"))
    with Receiver(MX1, smtp_port):
        run_worker(app)
    controller = start_inbound(app.settings, app.engine, f"{MX3}:{smtp_port}")
    yield app, accepted, (MX3, smtp_port)
    controller.stop()


def _bounce(where, message_id, raw, app):
    from postbote.domains.returnpath import return_path

    address = return_path(app.settings.SECRET_KEY, message_id, "rp.platform.test", valid_days=app.settings.return_path_days)
    with smtplib.SMTP(*where, timeout=10) as client:
        client.ehlo("mx.kunde.test")
        client.sendmail("", [address], raw)


@pytest.mark.parametrize("lang", ["en", "de", "es"])
def test_a_bounce_after_250_is_explained_and_both_are_in_the_timeline(delivered, lang):
    app, accepted, where = delivered
    _bounce(where, accepted.id, dsn("anna@kunde.test", diagnostic="smtp; 550 5.1.10 RESOLVER.ADR.RecipientNotFound; "
                                                                  "Recipient {r} not found by SMTP address lookup"), app)
    data = message_json(*message_story(app.engine, app.settings, accepted.id, lang=lang))
    anna = next(r for r in data["recipients"] if r["address"] == "anna@kunde.test")
    assert anna["state"] == "bounced"
    explanation = anna["explanation"]
    assert explanation["category"] == "invalid_recipient" and explanation["id"].startswith("invalid_recipient")
    assert explanation["cause"] and explanation["fix"] and "anna@kunde.test" in explanation["cause"]
    accepted_at = anna["history"][0]["started_at"][:16].replace("T", " ")
    assert anna["history"][0]["reply_code"] == 250 and accepted_at in explanation["status"]
    assert len(anna["reports"]) == 1 and anna["reports"][0]["status"] == "5.1.10"  # the remote server's own code
    assert "RecipientNotFound" in anna["reports"][0]["diagnostic"]
    assert anna["reports"][0]["at"][:16].replace("T", " ") in explanation["status"]
    lea = next(r for r in data["recipients"] if r["address"] == "lea@kunde.test")
    assert lea["state"] == "delivered" and lea["reports"] == []


def test_explain_prints_the_250_and_the_later_bounce(delivered, tmp_path):
    app, accepted, where = delivered
    _bounce(where, accepted.id, dsn("anna@kunde.test", status="5.2.2",
                                    diagnostic="smtp; 552 5.2.2 Mailbox full; STOREDRV.Deliver: quota exceeded"), app)
    shown = postbote({**cli_env(app), "COLUMNS": "250"}, tmp_path, "explain", accepted.id).stdout
    block = shown.split("anna@kunde.test", 1)[1].split("lea@kunde.test", 1)[0]
    assert "250" in block and "reported later (dsn)" in block and "5.2.2" in block, shown
    assert block.index("250") < block.index("reported later")
    assert "Why:" in block and "full" in block.split("Why:", 1)[1].lower(), shown
    as_json = json.loads(postbote(cli_env(app), tmp_path, "status", accepted.id, "--json").stdout)
    anna = next(r for r in as_json["recipients"] if r["address"] == "anna@kunde.test")
    assert anna["explanation"]["category"] == "mailbox_full"
