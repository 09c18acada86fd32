"""Automatic replies (RFC 3834): out-of-office notes, vacation messages, ticket acknowledgements.
They say the message arrived; they are recorded as what they are and never counted as bounces."""

from __future__ import annotations

import re

from .mime import Entity, decode_words

# RFC 3834 §5.1: "auto-replied" is a reply; "auto-generated" is what bounces carry, so it is no sign.
_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort|answer)|autoreply|auto:|out of (the )?office|"
    r"abwesenheit|automatische antwort|r[ée]ponse automatique|absence|respuesta autom[aá]tica|"
    r"fuera de la oficina|risposta automatica|vacation|on vacation|away from|自動応答|不在)", re.IGNORECASE)
_HEADERS = ("x-autoreply", "x-autorespond", "x-auto-response", "x-vacation")


def is_auto_reply(message: Entity) -> bool:
    if message.get("auto-submitted").lower().startswith("auto-replied"):
        return True
    if any(message.get(name) for name in _HEADERS):
        return True
    if message.get("precedence").lower().strip() == "auto_reply":
        return True
    subject = decode_words(message.get("subject"))
    if _SUBJECT.search(subject):
        return True
    # Microsoft sets this on its out-of-office replies (MS-OXCMAIL 2.2.3.2.14) besides the subject.
    return bool(message.get("x-auto-response-suppress")) and "reply" in subject.lower()
