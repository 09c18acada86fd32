"""Guarantees of the leaf modules that no other test pinned down: each test here was written
after the guarantee it names was removed from the code on purpose and the suite stayed green.
The examples are written out by hand, not copied from the code's own tables."""

from __future__ import annotations

import email
import email.policy

import dkim
import pytest

from postbote.compose import Draft, compose
from postbote.delivery.source_ip import pick_source_ip
from postbote.domains import keys
from postbote.domains.dkim import sign
from postbote.recipients import suggest
from postbote.replies import Reply, classify

PAIR = keys.generate()
TXT = f"v=DKIM1; k=rsa; p={PAIR.public_b64}".encode()


def _verifies(raw: bytes) -> bool:
    return dkim.verify(raw, dnsfunc=lambda name, timeout=5: TXT if name == b"pb1._domainkey.acme.test." else b"")


# Real mail domains one keystroke away from a big provider: a suggester that ignored them would
# "correct" a candidate's working address into someone else's.
@pytest.mark.parametrize("address", ["lena@mail.com", "lena@email.de", "lena@gmx.es", "lena@web.com",
                                     "lena@hotmail.fr", "lena@yahoo.co.uk", "lena@icloud.de", "lena@google.com"])
def test_real_lookalike_domains_are_never_corrected(address):
    assert suggest(address) is None  # as the explanation of an unknown user asks: DNS not consulted
    assert suggest(address, domain_exists=False) is None


def test_a_typo_next_to_a_lookalike_is_still_corrected():
    assert suggest("lena@gmial.com", domain_exists=False) == "lena@gmail.com"


def test_long_ascii_lines_never_go_out_as_7bit():
    # RFC 5322 §2.1.1: at most 998 characters per line; 7bit (RFC 2045 §2.7) allows no longer.
    line = "Tagesordnung: " + "Punkt; " * 300
    message = compose(Draft("hr@acme.test", ["anna@kunde.test"], "Protokoll", line), id_domain="p.test")
    assert all(len(raw_line) <= 998 for raw_line in message.raw.split(b"\r\n"))
    parsed = email.message_from_bytes(message.raw, policy=email.policy.default)
    assert parsed["Content-Transfer-Encoding"] == "quoted-printable"
    assert parsed.get_content().replace("\r\n", "\n").rstrip("\n") == line


def test_a_rewritten_reply_to_breaks_the_signature():
    # Reply-To decides where a candidate's answer goes: it must be covered by the signature.
    message = compose(Draft("hr@acme.test", ["anna@kunde.test"], "Einladung", "Bitte antworten",
                            reply_to="jobs@acme.test"), id_domain="p.test")
    signed = sign(message.raw, domain="acme.test", selector="pb1", key=PAIR.private_key)
    assert _verifies(signed)
    assert b"Reply-To: jobs@acme.test" in signed
    assert not _verifies(signed.replace(b"Reply-To: jobs@acme.test", b"Reply-To: jobs@evil.test"))


def test_the_source_ip_of_earlier_attempts_is_kept_when_the_hash_picks_another():
    configured = ["127.0.0.20", "127.0.0.21"]
    for domain in ("kunde.test", "gmx.de", "web.de", "example.org"):
        hashed = pick_source_ip(domain, None, configured)
        other = configured[1 - configured.index(hashed)]
        assert pick_source_ip(domain, other, configured) == other
    # an address no longer configured is not kept
    assert pick_source_ip("kunde.test", "127.0.0.99", configured) in configured


@pytest.mark.parametrize("text, temporary", [
    ("554 4.9.9 Odd things happen here", True),    # RFC 3463: the enhanced class is more specific
    ("454 5.9.9 Odd things happen here", False),
    ("554 Odd things happen here", False),          # without one, the reply code's class decides
    ("454 Odd things happen here", True),
])
def test_the_enhanced_code_class_decides_over_the_reply_code(text, temporary):
    assert classify(Reply.parse(text)).temporary is temporary
