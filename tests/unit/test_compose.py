import email
from email import policy

import pytest

from postbote.compose import Draft, compose, parse_mailbox
from postbote.errors import HeaderInjectionError, InvalidAddressError, InvalidMessageError


def build(**changes):
    fields = dict(sender="ACME GmbH <hr@acme.test>", recipients=["anna@beispiel.test"], subject="Willkommen",
                  text="Hallo Anna")
    fields.update(changes)
    return compose(Draft(**fields), id_domain="platform.test")


def parsed(message):
    return email.message_from_bytes(message.raw, policy=policy.default)


def test_headers_and_ids():
    message = build()
    mail = parsed(message)
    assert mail["From"] == "ACME GmbH <hr@acme.test>"
    assert mail["To"] == "anna@beispiel.test"
    assert mail["Message-ID"] == f"<{message.id}@platform.test>"
    assert email.utils.parsedate_to_datetime(mail["Date"]).tzinfo is not None
    assert b"\r\n" in message.raw and b"\n" not in message.raw.replace(b"\r\n", b"")


def test_utf8_subject_and_names_are_encoded_words():
    message = build(subject="Über Jürgens Start – Änderung", sender="Müller & Söhne <hr@acme.test>")
    head = message.raw.split(b"\r\n\r\n")[0]
    assert head.isascii()  # RFC 2047: non-ASCII only as encoded words
    mail = parsed(message)
    assert str(mail["Subject"]) == "Über Jürgens Start – Änderung"
    assert mail["From"].addresses[0].display_name == "Müller & Söhne"


def test_text_and_html_make_multipart_alternative_in_7bit():
    message = build(text="Grüße", html="<p>Grüße</p>")
    mail = parsed(message)
    assert mail.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in mail.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert mail.get_body(("plain",)).get_content().strip() == "Grüße"
    assert message.raw.isascii()  # quoted-printable: no receiver needs 8BITMIME


@pytest.mark.parametrize("field, value", [
    ("subject", "Hallo\r\nBcc: victim@example.test"),
    ("subject", "Hallo\nX-Evil: 1"),
    ("sender", "ACME\r\n <hr@acme.test>"),
    ("recipients", ["anna@beispiel.test\r\nBcc: victim@example.test"]),
    ("reply_to", "hr@acme.test\nBcc: x@y.test"),
])
def test_line_breaks_in_any_header_value_are_refused(field, value):
    with pytest.raises(HeaderInjectionError) as caught:
        build(**{field: value})
    assert caught.value.code == "header_injection"


@pytest.mark.parametrize("address", ["anna", "anna@", "@beispiel.test", "an na@beispiel.test",
                                     "anna@beispiel", "anna@-bad-.test", "a@b@c.test", '"anna"@beispiel.test'])
def test_bad_addresses_are_refused(address):
    with pytest.raises(InvalidAddressError):
        build(recipients=[address])


def test_idn_domain_becomes_a_label_and_duplicates_collapse():
    message = build(recipients=["jörg@münchen.test".replace("jörg", "joerg"), "JOERG@xn--mnchen-3ya.test", "b@c.test"])
    assert [r.address for r in message.recipients] == ["joerg@xn--mnchen-3ya.test", "b@c.test"]


def test_empty_subject_body_and_recipients_are_refused():
    for changes in ({"subject": " "}, {"text": "", "html": None}, {"recipients": []}):
        with pytest.raises(InvalidMessageError):
            build(**changes)


def test_mailbox_parsing():
    box = parse_mailbox("  Anna Schmidt <Anna.Schmidt@Beispiel.TEST> ")
    assert (box.address, box.display_name, box.domain) == ("Anna.Schmidt@beispiel.test", "Anna Schmidt", "beispiel.test")


from hypothesis import given, settings, strategies as st

# Printable text of any script, without line breaks (header values) or with them (bodies).
_line = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=200)
_body = st.lists(st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=1200), min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(subject=_line.filter(str.strip), name=_line, body=_body, html=st.none() | _line)
def test_round_trip_through_the_standard_parser(subject, name, body, html):
    """Whatever a customer writes comes back unchanged from a standard MIME parser."""
    text = "\n".join(body)
    if not text.strip() and not (html or "").strip():
        text = "x"
    name = name.strip().replace("<", "").replace(">", "")
    message = build(subject=subject, sender=f"{name} <hr@acme.test>", text=text, html=html)
    assert all(len(line) <= 998 for line in message.raw.split(b"\r\n"))
    assert message.raw.isascii()
    mail = parsed(message)
    assert str(mail["Subject"]) == subject
    assert mail["From"].addresses[0].addr_spec == "hr@acme.test"
    assert mail["From"].addresses[0].display_name == name.strip()
    expected = text or " "  # an HTML-only message still carries a (blank) text part
    assert mail.get_body(("plain",)).get_content().replace("\r\n", "\n").rstrip("\n") == expected.rstrip("\n")
    if html:
        assert mail.get_body(("html",)).get_content().rstrip("\n") == html.rstrip("\n")
