"""The DKIM signer against dkimpy as the independent verifier, the key vault, and the records."""

import dkim
import pytest
from hypothesis import given, settings, strategies as st

from postbote.compose import Draft, compose
from postbote.domains import keys
from postbote.domains.dkim import canonical_body, canonical_header, sign
from postbote.domains.publish import zone_file
from postbote.domains.records import Record, dkim_target, domain_label, spf_txt, tenant_records
from postbote.errors import ConfigError

PAIR = keys.generate()
TXT = f"v=DKIM1; k=rsa; p={PAIR.public_b64}".encode()


def verify(raw: bytes) -> bool:
    return dkim.verify(raw, dnsfunc=lambda name, timeout=5: TXT if name == b"pb1._domainkey.acme.test." else b"")


_text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=120)


@settings(max_examples=60, deadline=None)
@given(subject=_text.filter(str.strip), body=st.lists(_text, min_size=1, max_size=6).filter(lambda b: "".join(b).strip()),
       html=st.none() | _text)  # a message without any visible body is refused by compose, rightly
def test_signatures_verify_with_dkimpy(subject, body, html):
    message = compose(Draft("ACME GmbH <hr@acme.test>", ["Anna <anna@kunde.test>"], subject, "\n".join(body) + "  \n\n\n",
                            html, reply_to="jobs@acme.test"), id_domain="platform.test")
    signed = sign(message.raw, domain="acme.test", selector="pb1", key=PAIR.private_key)
    assert verify(signed)
    assert not verify(signed.replace(b"\r\nTo: ", b"\r\nTo: Mallory <m@evil.test>, ", 1))


def test_a_second_from_added_later_breaks_the_signature():
    message = compose(Draft("hr@acme.test", ["anna@kunde.test"], "Hallo", "x"), id_domain="p.test")
    signed = sign(message.raw, domain="acme.test", selector="pb1", key=PAIR.private_key)
    assert b"h=from:from:" in signed and verify(signed)
    assert not verify(signed.replace(b"\r\nTo:", b"\r\nFrom: ceo@acme.test\r\nTo:", 1))


def test_relaxed_canonicalisation_rfc6376_examples():
    # RFC 6376 §3.4.5
    assert canonical_header(b"A", b" X\r\n") == b"a:X\r\n"
    assert canonical_header(b"B ", b" Y\t\r\n\tZ  ") == b"b:Y Z\r\n"
    assert canonical_body(b" C \r\nD \t E\r\n\r\n\r\n") == b" C\r\nD E\r\n"
    assert canonical_body(b"") == b"" and canonical_body(b"\r\n\r\n") == b""


def test_the_vault_encrypts_and_refuses_another_master_key():
    vault = keys.KeyVault("one master key, long enough to be one")
    sealed = vault.seal(PAIR.private_key)
    assert keys.public_b64(vault.open(sealed).public_key()) == PAIR.public_b64
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        keys.KeyVault("another master key, long enough too").open(sealed)
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        keys.KeyVault("")


@pytest.mark.parametrize("a, b", [("acme.com", "acme-com"), ("acme-com.de", "acme--com-de"), ("acme.com.de", "acme-com-de")])
def test_domain_labels_are_unique(a, b):
    assert domain_label(a) == b
    long = "x" * 70 + ".example"
    assert len(domain_label(long)) <= 63 and domain_label(long) != domain_label("y" * 70 + ".example")


def test_a_crafted_short_domain_cannot_take_a_long_domains_dkim_target():
    """A cut-off prefix plus a short hash was a label a crafted domain could spell: the squatter's
    domain then shared the victim's selector names in the platform zone."""
    import hashlib

    victim = "a" * 40 + "." + "b" * 30 + ".example"
    for crafted in ("a" * 40 + "." + "b" * 9 + "." + hashlib.sha256(victim.encode()).hexdigest()[:12],
                    domain_label(victim) + ".example", domain_label(victim)[:20] + "." + domain_label(victim)[20:]):
        assert domain_label(crafted) != domain_label(victim)
        assert dkim_target(crafted, "pb1", "p.example") != dkim_target(victim, "pb1", "p.example")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True), min_size=2, max_size=6),
       st.lists(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True), min_size=2, max_size=6))
def test_domain_labels_are_injective_and_fit_a_label(a, b):
    first, second = ".".join(a), ".".join(b)
    assert len(domain_label(first)) <= 63
    assert (domain_label(first) == domain_label(second)) == (first == second)


def test_tenant_records_are_cnames_into_the_platform_zone():
    records = tenant_records("acme.com", "platform.example", "rp.platform.example")
    assert [(r.name, r.type, r.value) for r in records[:3]] == [
        ("pb1._domainkey.acme.com", "CNAME", "pb1.acme-com.dkim.platform.example"),
        ("pb2._domainkey.acme.com", "CNAME", "pb2.acme-com.dkim.platform.example"),
        ("pbmail.acme.com", "CNAME", "rp.platform.example"),
    ]
    assert records[3].type == "TXT" and not records[3].required
    assert dkim_target("acme.com", "pb1", "platform.example") == records[0].value


def test_zone_file_splits_long_txt_and_spf_lists_the_ips():
    text = zone_file([Record("pb1.acme-com.dkim.platform.example", "TXT", "v=DKIM1; k=rsa; p=" + "A" * 392, "key")])
    line = text.splitlines()[1]
    assert line.startswith("pb1.acme-com.dkim.platform.example. 3600 IN TXT \"v=DKIM1")
    assert line.count('" "') == 1  # 411 characters: two strings of at most 255 (RFC 1035 §3.3.14)
    assert spf_txt(["192.0.2.1", "2001:db8::1"]) == "v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 -all"
