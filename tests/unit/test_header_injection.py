"""Header injection (issue: control characters). Any character of Unicode, control characters
included, either is refused with ``header_injection`` or comes back from the standard parser as
exactly the value asked for, in exactly the headers asked for — and a DKIM signature made over
it still verifies once the headers are read back."""

from __future__ import annotations

import email
from email import policy

import dkim
import pytest
from hypothesis import example, given, settings, strategies as st

from postbote.compose import Draft, compose, parse_mailbox, unsafe_character
from postbote.domains import keys
from postbote.domains.dkim import sign
from postbote.errors import HeaderInjectionError, InputError

# Every character that str.splitlines() splits on, the rest of C0, DEL and the C1 controls.
BREAKERS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
CONTROLS = [chr(c) for c in range(0x20)] + ["\x7f"] + [chr(c) for c in range(0x80, 0xA0)]

# All of Unicode (category Cc included; only lone surrogates are left to the encoder), with the
# dangerous characters drawn often enough that nearly every example carries some.
_char = st.one_of(st.characters(), st.sampled_from(BREAKERS), st.sampled_from(CONTROLS))
_value = st.text(_char, min_size=1, max_size=160)
EXPECTED_HEADERS = ["From", "To", "Reply-To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
                    "Content-Transfer-Encoding"]
PAIR = keys.generate()
TXT = f"v=DKIM1; k=rsa; p={PAIR.public_b64}".encode()


def unsafe(value: str) -> bool:
    """Independent of the code under test: what the issue calls unsafe, spelled out."""
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF or c.splitlines() != [c]
               for c in value)  # surrogates: a lone one cannot be encoded at all


def build(subject: str, name: str, reply_name: str = "Jobs"):
    return compose(Draft(sender=f"{name} <hr@acme.test>", recipients=["Anna <anna@kunde.test>"], subject=subject,
                         text="Hallo", reply_to=f"{reply_name} <jobs@acme.test>"), id_domain="platform.test")


@settings(max_examples=600, deadline=None)
@given(subject=_value, name=_value, reply_name=_value)
@example(subject="Ihre Gehaltsabrechnung ist da – bitte prüfen Sie Ihre Bankverbindung noch heute \x0bFrom : "
                 '"Bank" <security@bank.example>', name="ACME", reply_name="Jobs")
@example(subject="x" * 80 + "\x1cFrom: ceo@acme.test", name="ACME", reply_name="Jobs")
@example(subject="Hallo", name="ACME\u2028From: ceo@acme.test", reply_name="Jobs")
@example(subject=" ", name="ACME", reply_name="Jo\x01bs")  # an empty subject must not hide the attack
@example(subject=" 0", name="ACME", reply_name="Jobs")  # a leading space survives the parser too
@example(subject="=?utf-8?q?From:_ceo@acme.test?= ", name="ACME", reply_name="Jobs")  # read as text, not decoded
def test_any_header_value_is_refused_or_comes_back_exactly(subject, name, reply_name):
    hostile = unsafe(subject) or unsafe(name) or unsafe(reply_name)
    try:
        message = build(subject, name, reply_name)
    except HeaderInjectionError as error:
        assert hostile, f"refused a safe value: {error.message}"
        assert error.code == "header_injection" and error.hint
        return
    except InputError:
        assert not hostile  # an empty subject or an unusable name: refused for another reason
        return
    assert not hostile, "a value with a control character or line break was accepted"
    mail = email.message_from_bytes(message.raw, policy=policy.default)
    assert list(mail.keys()) == EXPECTED_HEADERS
    assert str(mail["Subject"]) == subject
    assert [a.display_name for a in mail["From"].addresses] == [parse_mailbox(f"{name} <hr@acme.test>").display_name]
    assert [a.addr_spec for a in mail["From"].addresses] == ["hr@acme.test"]
    assert [a.display_name for a in mail["Reply-To"].addresses] == [
        parse_mailbox(f"{reply_name} <jobs@acme.test>").display_name]
    assert [a.addr_spec for a in mail["To"].addresses] == ["anna@kunde.test"]


@pytest.mark.parametrize("char", list(BREAKERS) + CONTROLS)
@pytest.mark.parametrize("field", ["subject", "sender", "recipient", "reply_to"])
def test_each_control_character_is_refused_in_each_field(field, char):
    fields = dict(sender="ACME <hr@acme.test>", recipients=["anna@kunde.test"], subject="x" * 90 + " Hallo",
                  text="x", reply_to=None)
    if field == "subject":
        fields["subject"] += char + "From: ceo@acme.test"
    elif field == "sender":
        fields["sender"] = f"ACME{char}From: x <hr@acme.test>"
    elif field == "recipient":
        fields["recipients"] = [f"Anna{char}Bcc: x <anna@kunde.test>"]
    else:
        fields["reply_to"] = f"Jobs{char} <jobs@acme.test>"
    with pytest.raises(HeaderInjectionError) as caught:
        compose(Draft(**fields), id_domain="platform.test")
    assert caught.value.code == "header_injection"
    assert f"U+{ord(char):04X}" in caught.value.message
    assert unsafe_character(char) == char


@pytest.mark.parametrize("subject", [
    "Willkommen bei ACME – Ihr erster Arbeitstag ist am Montag, bitte bringen Sie Ihre Unterlagen mit: From: x",
    "Ü" * 120, "Hallo 😀 " * 20, "\u200bzero width\u200e and RTL \u202e text",
])
def test_signed_messages_parse_back_and_verify_with_dkimpy(subject):
    message = build(subject, "Müller & Söhne, \"HR\"")
    signed = sign(message.raw, domain="acme.test", selector="pb1", key=PAIR.private_key)
    mail = email.message_from_bytes(signed, policy=policy.default)
    assert list(mail.keys()) == ["DKIM-Signature"] + EXPECTED_HEADERS
    assert str(mail["Subject"]) == subject and len(mail.get_all("From")) == 1
    # Rebuild the message from the headers as the parser split them: if they verify, the headers
    # the parser sees are exactly the headers that were signed.
    head = "".join(f"{name}: {value}\r\n" for name, value in mail.raw_items()).encode("ascii")
    rebuilt = head + b"\r\n" + signed.split(b"\r\n\r\n", 1)[1]
    dns = lambda name, timeout=5: TXT if name == b"pb1._domainkey.acme.test." else b""  # noqa: E731
    assert dkim.verify(signed, dnsfunc=dns) and dkim.verify(rebuilt, dnsfunc=dns)


def test_the_attack_from_the_issue_never_reaches_the_signer():
    with pytest.raises(HeaderInjectionError):
        build("Ihre Gehaltsabrechnung " * 4 + '\x0bFrom : "Bank" <security@bank.example>', "ACME")
