"""Provider-like receivers drive retries and stops as the rules say, and the story of a message
is told back — by the CLI, in German, English and Spanish, and by the API with feedback."""

from __future__ import annotations

import json
import subprocess
import sys

from fastapi.testclient import TestClient

from postbote.api import create_api
from postbote.compose import Draft
from postbote.queue import message_status
from postbote.sending import send
from postbote.tenants import add_tenant, create_key
from postbote.testing import Receiver
from postbote.testing.smtp_receiver import Greylister
from tests.conftest import MX1, run_worker
from tests.integration.test_cli import cli_env

GMAIL_MX = "gmail-smtp-in.l.google.com"  # answered by our DNS server, on loopback


class GmailLike(Greylister):
    """Replies as Gmail does, per recipient (https://support.google.com/a/answer/3726730)."""

    def rcpt(self, peer_ip, mail_from, recipient):
        user = recipient.split("@")[0]
        if user == "gone":
            return ("550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n"
                    "550 5.1.1 double-checking the recipient's email address. https://support.google.com/mail/?p=NoSuchUser - gsmtp")
        if user == "full":
            return "452 4.2.2 The email account that you tried to reach is over quota. - gsmtp"
        if user == "busy":
            return "450 4.2.1 The user you are trying to contact is receiving mail too quickly. - gsmtp"
        if user == "grey":
            return super().rcpt(peer_ip, mail_from, recipient)
        return "250 2.1.5 OK - gsmtp"


def test_gmail_like_replies_drive_retries_and_stops(make_app, zone, smtp_port, tmp_path):
    zone.mail_domain("gmail.test", (5, GMAIL_MX, MX1))
    app = make_app(PARTNER_IPS=["198.51.100.5"])
    tenant = add_tenant(app.engine, "acme", "ACME GmbH")
    accepted = send(app.engine, app.settings, tenant,
                    Draft("hr@acme.test", [f"{u}@gmail.test" for u in ("anna", "gone", "full", "busy", "grey")],
                          "Ihr Vorstellungsgespräch", "Hallo"))
    with Receiver(MX1, smtp_port, GmailLike()):
        run_worker(app, until_done=False, timeout=3)
    view = {r.address.split("@")[0]: r for r in message_status(app.engine, accepted.id).recipients}

    assert view["anna"].state == "delivered" and view["anna"].provider == "gmail"
    assert view["gone"].state == "bounced" and view["gone"].attempts == 1
    assert view["gone"].history[0].category == "invalid_recipient"
    assert view["grey"].state == "delivered"
    assert [a.category for a in view["grey"].history] == ["greylisted", None]
    assert view["full"].state == "deferred" and view["full"].category == "mailbox_full"
    # A rate limit waits at least its category's minimum (15 minutes), not the 1 s schedule.
    busy = view["busy"]
    assert busy.state == "deferred" and busy.attempts == 1 and busy.category == "rate_limited"
    assert (busy.next_attempt_at - busy.history[0].started_at).total_seconds() >= 890

    env = cli_env(app)
    story = subprocess.run([sys.executable, "-m", "postbote", "explain", accepted.id, "--lang", "de"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert story.returncode == 0, story.stderr
    text = " ".join(story.stdout.split())
    assert "invalid_recipient" in text and "gibt es bei Gmail / Google Workspace nicht" in text
    assert "Postfach von full@gmail.test bei Gmail / Google Workspace ist voll" in text
    assert "(greylisted)" in text  # grey's first attempt, before its delivery

    as_json = json.loads(subprocess.run([sys.executable, "-m", "postbote", "status", accepted.id, "--json", "--lang", "es"],
                                        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60).stdout)
    gone = next(r for r in as_json["recipients"] if r["address"] == "gone@gmail.test")
    assert gone["explanation"]["id"] == "invalid_recipient" and gone["explanation"]["lang"] == "es"
    assert gone["explanation"]["status"].startswith("No entregado")


def test_api_explanations_feedback_and_report(make_app, zone, smtp_port):
    zone.mail_domain("gmail.test", (5, GMAIL_MX, MX1))
    app = make_app()
    acme, globex = add_tenant(app.engine, "acme"), add_tenant(app.engine, "globex")
    client = TestClient(create_api(app))
    auth = {"Authorization": f"Bearer {create_key(app.engine, acme)}"}
    other = {"Authorization": f"Bearer {create_key(app.engine, globex)}"}
    sent = client.post("/v1/messages", headers=auth, json={
        "from": "hr@acme.test", "to": ["gone@gmail.test", "anna@gmail.test", "lena@gmial.com"],
        "subject": "Hallo", "text": "x"}).json()
    with Receiver(MX1, smtp_port, GmailLike()):
        run_worker(app)

    story = client.get(f"/v1/messages/{sent['id']}?lang=de", headers=auth).json()
    gone = story["recipients"][0]
    assert gone["state"] == "bounced" and gone["history"][0]["category"] == "invalid_recipient"
    assert gone["explanation"]["id"] == "invalid_recipient" and "Tippfehler" in gone["explanation"]["fix"]
    assert story["recipients"][1]["explanation"]["status"].startswith("Zugestellt")
    assert [r["address"] for r in story["recipients"]] == ["gone@gmail.test", "anna@gmail.test"]
    [typo] = sent["refused"]  # gmial.com does not exist (in the test DNS): refused at the door, with the likely address
    assert (typo["address"], typo["reason"], typo["suggestion"]) == ("lena@gmial.com", "domain_not_found", "lena@gmail.com")
    assert client.get(f"/v1/messages/{sent['id']}?lang=fr", headers=auth).json()["error"]["code"] == "language_unknown"

    rated = client.post("/v1/explanations/invalid_recipient/feedback", headers=auth,
                        json={"helpful": False, "lang": "de", "message_id": sent["id"], "comment": "unklar"})
    assert rated.status_code == 201
    assert client.post("/v1/explanations/invalid_recipient/feedback", headers=auth, json={"helpful": True}).status_code == 201
    assert client.post("/v1/explanations/nonsense/feedback", headers=auth, json={"helpful": True}).status_code == 404
    foreign = client.post("/v1/explanations/invalid_recipient/feedback", headers=other,
                          json={"helpful": True, "message_id": sent["id"]})
    assert foreign.status_code == 404  # another tenant's message is not there for globex

    report = client.get("/v1/report?since=1h", headers=auth).json()
    assert {"destination": "Gmail / Google Workspace", "state": "bounced", "category": "invalid_recipient", "count": 1} in report["outcomes"]
    assert {"destination": "Gmail / Google Workspace", "state": "delivered", "category": None, "count": 1} in report["outcomes"]
    assert {"explanation": "invalid_recipient", "lang": "de", "helpful": 0, "not_helpful": 1} in report["feedback"]
    assert client.get("/v1/report", headers=other).json()["outcomes"] == []
