"""Bounce and complaint messages as receivers send them, built per RFC 3464 and RFC 5965."""

from __future__ import annotations

from email.message import EmailMessage
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email import message_from_string
from email.policy import SMTP


def dsn(recipient: str, *, status: str = "5.1.1", action: str = "failed",
        diagnostic: str = "smtp; 550 5.1.1 <{r}>: Recipient address rejected: User unknown", original_id: str = "") -> bytes:
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "MAILER-DAEMON@mx.kunde.test"
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report.attach(MIMEText("I'm sorry to have to inform you that your message could not be delivered.\n"))
    fields = MIMEBase("message", "delivery-status")
    per_message = "Reporting-MTA: dns; mx.kunde.test\nArrival-Date: Mon, 2 Nov 2026 10:00:00 +0100\n"
    per_recipient = (f"Final-Recipient: rfc822; {recipient}\nOriginal-Recipient: rfc822;{recipient}\nAction: {action}\n"
                     f"Status: {status}\nRemote-MTA: dns; mailstore.kunde.test\n"
                     f"Diagnostic-Code: {diagnostic.format(r=recipient)}\n")
    fields.set_payload([message_from_string(per_message), message_from_string(per_recipient)])
    report.attach(fields)
    original = EmailMessage()
    original["Message-ID"] = original_id or "<x@platform.test>"
    original["Subject"] = "Willkommen"
    report.attach(MIMEMessage(original))
    return report.as_bytes(policy=SMTP)


def arf(recipient: str, *, original_id: str = "<x@platform.test>") -> bytes:
    report = MIMEMultipart("report", report_type="feedback-report")
    report["From"] = "feedback@fbl.kunde.test"
    report["Subject"] = "FW: Willkommen"
    report.attach(MIMEText("This is an email abuse report for an email message received from IP 127.0.0.20.\n"))
    feedback = MIMEBase("message", "feedback-report")
    feedback.set_payload([message_from_string(
        "Feedback-Type: abuse\nUser-Agent: SomeGenerator/1.0\nVersion: 1\n"
        f"Original-Mail-From: <bounces+x@rp.platform.test>\nOriginal-Rcpt-To: <{recipient}>\n"
        "Arrival-Date: Thu, 8 Mar 2026 14:00:00 EDT\nSource-IP: 127.0.0.20\n")])
    report.attach(feedback)
    original = EmailMessage()
    original["Message-ID"] = original_id
    original["To"] = recipient
    original["Subject"] = "Willkommen"
    report.attach(MIMEMessage(original))
    return report.as_bytes(policy=SMTP)


def prose_bounce(recipient: str) -> bytes:
    """qmail's style: no report structure, the facts in text."""
    message = EmailMessage()
    message["From"] = "MAILER-DAEMON@mail.kunde.test"
    message["Subject"] = "failure notice"
    message.set_content("Hi. This is the qmail-send program at mail.kunde.test.\n"
                        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
                        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
                        f"<{recipient}>:\nSorry, no mailbox here by that name. (#5.1.1)\n")
    return message.as_bytes(policy=SMTP)


def out_of_office(sender: str, subject: str = "Automatic reply: Willkommen") -> bytes:
    """An RFC 3834 automatic reply, as Exchange and most mail clients send one."""
    reply = EmailMessage()
    reply["From"] = sender
    reply["To"] = "bounces@rp.platform.test"
    reply["Subject"] = subject
    reply["Auto-Submitted"] = "auto-replied"
    reply["X-Auto-Response-Suppress"] = "All"
    reply.set_content("I am out of the office until Monday and will answer your message then.\n")
    return reply.as_bytes(policy=SMTP)
