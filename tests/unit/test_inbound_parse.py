import os

from postbote.inbound import parse_report
from postbote.inbound.meaning import classify_recipient
from tests.support.reports import arf, dsn, prose_bounce


def test_a_dsn_gives_each_recipient_with_status_and_diagnostic():
    report = parse_report(dsn("Anna@Kunde.test"))
    assert report.kind == "dsn"
    [r] = report.recipients
    assert (r.address, r.action, r.status) == ("anna@kunde.test", "failed", "5.1.1")
    assert r.diagnostic == "550 5.1.1 <Anna@Kunde.test>: Recipient address rejected: User unknown"
    assert report.original_message_id == "<x@platform.test>"


def test_a_delay_notice_is_not_a_failure():
    [r] = parse_report(dsn("anna@kunde.test", status="4.4.7", action="delayed", diagnostic="smtp; 451 4.4.7 later")).recipients
    assert (r.action, r.status) == ("delayed", "4.4.7")


def test_an_arf_complaint():
    report = parse_report(arf("lea@kunde.test", original_id="<abc@platform.test>"))
    assert (report.kind, report.feedback_type, report.original_recipients) == ("complaint", "abuse", ["lea@kunde.test"])
    assert report.original_message_id == "<abc@platform.test>"


def test_a_bounce_in_prose():
    report = parse_report(prose_bounce("tom@kunde.test"))
    assert report.kind == "bounce" and report.recipients[0].address == "tom@kunde.test"
    assert report.recipients[0].status == "5.1.1"


def test_garbage_is_unreadable_not_an_exception():
    for raw in (b"", os.urandom(5000), b"\x00\xff" * 100, b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\n--",
                b"Subject: hello\r\n\r\njust a note"):
        assert parse_report(raw).kind == "unreadable"


# --- reports as real MTAs write them ------------------------------------------------------------

def _report(status_part: str, notice: str = "This message could not be delivered.", **headers: str) -> bytes:
    head = {"From": "Mail Delivery <mailer-daemon@mx.kunde.test>", "To": "bounce@platform.test",
            "Subject": "Delivery Status Notification", **headers}
    lines = [f"{k}: {v}" for k, v in head.items()]
    return ("\n".join(lines) + '\nContent-Type: multipart/report; report-type=delivery-status; boundary="q"\n\n'
            f"--q\nContent-Type: text/plain\n\n{notice}\n--q\nContent-Type: message/delivery-status\n\n"
            f"{status_part}\n--q--\n").encode()


def test_fields_written_before_the_recipient_field_belong_to_that_recipient():
    """RFC 3464 §2.3 puts Final-Recipient first; some MTAs write Action, Status or Diagnostic-Code
    before it, and Original-Recipient after: still one recipient, with its own fields."""
    report = parse_report(_report(
        "Reporting-MTA: dns; mx.kunde.test\n\n"
        "Diagnostic-Code: smtp; 550 5.1.1 Recipient address does not exist\nStatus: 5.1.1\n"
        "Final-Recipient: rfc822; anna@kunde.test\nAction: failed\n\n"
        "Action: failed\nFinal-Recipient: rfc822; ben@kunde.test\nOriginal-Recipient: rfc822; ben@kunde.test\n"
        "Diagnostic-Code: smtp; 452 4.2.2 Mailbox full\nStatus: 4.2.2\n"))
    assert [(r.address, r.action, r.status) for r in report.recipients] == [
        ("anna@kunde.test", "failed", "5.1.1"), ("ben@kunde.test", "failed", "4.2.2")]
    assert "does not exist" in report.recipients[0].diagnostic


def test_a_delivery_report_whose_status_part_is_empty_is_read_as_prose():
    """RFC 6522 §3: multipart/report with report-type=delivery-status is a bounce, whatever its
    subject and sender say."""
    raw = _report("Reporting-MTA: dns; mx.kunde.test\n\nMessage removed",
                  notice="A message could not be delivered to:\nanna@kunde.test\nL'adresse n'existe pas.",
                  From="annuaire@kunde.test", Subject="Utilisateur non recensé")
    report = parse_report(raw)
    assert report.kind == "bounce"
    assert [r.address for r in report.recipients] == ["anna@kunde.test"]


def test_the_reason_sendmail_puts_in_the_subject_is_read():
    raw = (b"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.kunde.test>\nTo: bounce@platform.test\n"
           b"Subject: Returned mail: User unknown\nContent-Type: text/plain\n\n"
           b"----- The following addresses had permanent delivery errors -----\nanna@kunde.test\n")
    [r] = parse_report(raw).recipients
    assert r.address == "anna@kunde.test" and "User unknown" in r.diagnostic
    assert classify_recipient(r).category.value == "invalid_recipient"


def test_an_inline_original_after_an_original_message_line_is_not_the_notice():
    raw = (b"From: MMSC NDR Administrator <sysadmin@mms.kunde.test>\nTo: bounce@platform.test\n"
           b"Subject: Undeliverable Message\nContent-Type: text/plain\n\n"
           b"Message could not be delivered to mobile.\nError: No valid recipients for this MM\n\n"
           b"Original Message:\nFrom: HR <hr@platform.test>\nTo: 0151@mms.kunde.test\nSubject: Termin\n")
    [r] = parse_report(raw).recipients
    assert r.address == "0151@mms.kunde.test" and "No valid recipients" in r.diagnostic
    assert classify_recipient(r).category.value == "invalid_recipient"


def test_exchange_x400_addresses_and_version_numbers_in_prose():
    raw = (b"From: System Administrator <postmaster@ex.kunde.test>\nTo: bounce@platform.test\n"
           b"Subject: Undeliverable: Termin\nContent-Type: text/plain\n\n"
           b"Your message did not reach some or all of the intended recipients.\n"
           b"The following recipient(s) could not be reached:\n\n"
           b"c=DE;a= ;p=KUNDE;o=Zentrale;dda:SMTP=anna@kunde.test; on 4.10.2024\n"
           b"    The recipient name is not recognized (GroupWise 6.5.2.0.12)\n")
    [r] = parse_report(raw).recipients
    assert r.address == "anna@kunde.test"
    assert r.status is not None and r.status[0] == "5"  # 2.0.12 is part of a version, not a status


def test_a_quoted_to_header_of_the_original_names_no_failed_recipient():
    """Exchange and webmail notices quote the original's To: (a list, or all its recipients) above
    or below their own list of failed recipients; only the latter failed."""
    raw = (b"From: System Administrator <postmaster@ex.kunde.test>\nTo: bounce@platform.test\n"
           b"Subject: Undeliverable: Termin\nContent-Type: text/plain\n\n"
           b"Your message\n\n  To:      team@kunde.test\n  Subject: Termin\n\n"
           b"did not reach the following recipient(s):\n\nanna@kunde.test on 4.10.2024\n"
           b"    The recipient name is not recognized\n")
    assert [r.address for r in parse_report(raw).recipients] == ["anna@kunde.test"]
    details = (b"From: Mail Delivery System <mailer-daemon@mx.kunde.test>\nTo: bounce@platform.test\n"
               b"Subject: Delivery failure\nContent-Type: text/plain\n\n"
               b"Delivery has failed to these recipients or distribution lists:\n\n"
               b"\t* [anna@kunde.test]: 550 anna@kunde.test...User account is overquota\n\n"
               b"Original message details:\n\n\t* From: hr@platform.test\n\t* To: ben@kunde.test\n")
    [r] = parse_report(details).recipients
    assert r.address == "anna@kunde.test" and classify_recipient(r).category.value == "mailbox_full"


def test_a_reply_code_followed_by_a_comma_gives_the_status_class():
    raw = (b"From: Mail Delivery System <mailer-daemon@mx.kunde.test>\nTo: bounce@platform.test\n"
           b"Subject: Undelivered Mail\nContent-Type: text/plain\n\n"
           b"A message that you sent could not be delivered to one or more of its recipients.\n\n"
           b"anna@kunde.test Error, ERROR_CODE :421, ERROR_CODE :, Host not reachable.\n")
    [r] = parse_report(raw).recipients
    assert r.status == "4.0.0"


def test_a_status_part_in_iso_2022_jp_without_a_charset_is_decoded():
    """RFC 1468 text shows itself by its escape sequences; Japanese MTAs leave the charset out."""
    diagnostic = "ユーザーは見つかりません".encode("iso-2022-jp")
    raw = _report("Reporting-MTA: dns; mx.kunde.test\n\nFinal-Recipient: rfc822; anna@kunde.test\nAction: failed\n"
                  "Status: 5.0.0\nDiagnostic-Code: X-Notes; ").replace(b"X-Notes; ", b"X-Notes; " + diagnostic)
    [r] = parse_report(raw).recipients
    assert r.diagnostic == "ユーザーは見つかりません"


def test_a_notice_that_gave_up_reports_a_failure_even_with_a_transient_code():
    """qmail's "I'm not going to try again" after a 4.x.x is an expiry (RFC 3464 §2.3.3), while
    Exim's warning that it "will give up" eventually is still a delay."""
    def notice(text: bytes) -> bytes:
        return (b"From: MAILER-DAEMON@mx.kunde.test\nTo: bounce@platform.test\nSubject: failure notice\n"
                b"Content-Type: text/plain\n\n" + text)
    [gave_up] = parse_report(notice(b"<anna@kunde.test>:\nSorry, I wasn't able to establish an SMTP connection. "
                                    b"(#4.4.1)\nI'm not going to try again; this message has been in the queue too long.\n")).recipients
    assert (gave_up.action, gave_up.status) == ("failed", "4.4.1")
    assert classify_recipient(gave_up).category.value == "expired"
    [warning] = parse_report(notice(b"This message has not yet been delivered.\n  anna@kunde.test\n    retry time not "
                                    b"reached (#4.4.1)\nNo action is required on your part. Delivery attempts will "
                                    b"continue; eventually the mail delivery software will give up.\n")).recipients
    assert warning.action == "delayed"
