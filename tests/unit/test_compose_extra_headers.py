"""The few header fields Postbote adds itself (List-Unsubscribe, List-Unsubscribe-Post, the test
mark): only those, and never with a line break in them."""

from __future__ import annotations

import email

import pytest

from postbote.compose import Draft, compose
from postbote.errors import HeaderInjectionError, InvalidMessageError

BASE = dict(sender="hr@acme.test", recipients=["lea@kandidaten.test"], subject="Hallo", text="Text")


def test_list_unsubscribe_fields_are_written():
    fields = (("List-Unsubscribe", "<https://platform.test/v1/unsubscribe/abc>, <mailto:unsubscribe@rp.platform.test>"),
              ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    message = email.message_from_bytes(compose(Draft(**BASE, headers=fields), id_domain="platform.test").raw)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "https://platform.test/v1/unsubscribe/abc" in message["List-Unsubscribe"]


@pytest.mark.parametrize("name", ["Bcc", "From", "To", "Subject", "Received", "DKIM-Signature"])
def test_other_fields_cannot_be_added(name):
    with pytest.raises(InvalidMessageError):
        compose(Draft(**BASE, headers=((name, "x@evil.test"),)), id_domain="platform.test")


def test_a_line_break_in_an_added_field_is_refused():
    with pytest.raises(HeaderInjectionError):
        compose(Draft(**BASE, headers=(("List-Unsubscribe", "<https://x>\r\nBcc: victim@example.test"),)),
                id_domain="platform.test")
