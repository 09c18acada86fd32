import os

from postbote.inbound import parse_report
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
