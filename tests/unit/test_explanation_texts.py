"""Every explanation, in every language, with every variant of what is known (the recipient, the
provider, the sending IPs; whether Postbote still tries), rendered and compared with a reviewed
text (tests/data/explanations.golden.txt). Each case is a whole sentence written for it — never a
stand-in phrase stitched into a sentence — and a text never promises a retry once Postbote has
stopped. After changing a text: WRITE_GOLDEN_EXPLANATIONS=1 pytest this file, then read the diff."""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

from postbote.replies import LANGUAGES, ExplanationContext, explain, explanation_ids
from postbote.replies.classify import Classification
from postbote.replies.explain import texts
from postbote.vocab import ReplyCategory

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "explanations.golden.txt"
RECIPIENT = "anna.schmidt@beispiel.de"
IPS = ("192.0.2.20", "192.0.2.21")
GENERIC_PROVIDER = "gmx"  # has no text of its own: the category's text with a provider's name
RETRY_WORDS = {"en": r"\b(tries again|retries|retry|keeps trying|waits at least)\b",
               "de": r"(versucht es (automatisch |langsamer )?erneut|versucht es .* weiter|wartet mindestens)",
               "es": r"\b(reintenta|vuelve a intentar|sigue intentándolo|espera al menos)\b"}


def _cases():
    for lang in LANGUAGES:
        for key in sorted(explanation_ids()):
            category, _, own_provider = key.partition(".")
            for provider, recipient, ips, state in itertools.product(
                    [own_provider] if own_provider else [None, GENERIC_PROVIDER], [RECIPIENT, None], [IPS, ()],
                    [None, "deferred", "expired"]):
                reply = Classification(ReplyCategory(category), temporary=state == "deferred", provider=provider,
                                       retry_after=None, rule="golden")
                context = ExplanationContext(recipient=recipient, source_ips=ips, state=state,
                                             next_attempt="2026-12-02 10:30 UTC")
                case = (f"provider={provider or '-'} recipient={'known' if recipient else 'unknown'} "
                        f"ips={'known' if ips else 'unknown'} state={state or '-'}")
                yield lang, key, case, explain(reply, lang, context)


def render() -> str:
    blocks: dict[tuple[str, str, str, str], list[str]] = {}
    statuses: dict[tuple[str, str], str] = {}
    for lang, key, case, e in _cases():
        blocks.setdefault((lang, key, e.cause, e.fix), []).append(case)
        if e.status:
            statuses[(lang, case.rsplit("state=", 1)[1])] = e.status
    out = []
    for (lang, key, cause, fix), cases in blocks.items():
        out.append(f"== {lang} {key}  ({len(cases)} of 24 cases; first: {cases[0]})\n  cause: {cause}\n  fix:   {fix}\n")
    for (lang, state), status in sorted(statuses.items()):
        out.append(f"== {lang} status {state}\n  {status}\n")
    return "\n".join(out)


def test_every_explanation_in_every_language_and_case_is_the_reviewed_text():
    rendered = render()
    if os.environ.get("WRITE_GOLDEN_EXPLANATIONS"):
        GOLDEN.write_text(rendered, encoding="utf-8")
    assert rendered == GOLDEN.read_text(encoding="utf-8"), "texts changed: rewrite the golden file and review it"


def test_every_case_is_a_whole_sentence():
    for lang, key, case, e in _cases():
        for text in (e.cause, e.fix, e.status or "Ok."):
            where = (lang, key, case, text)
            assert text[:1].isupper() or text[:1].isdigit() or text.startswith(("¿", "¡")), where
            assert text.rstrip()[-1] in ".?!)", where
            assert "{" not in text and "  " not in text and "()" not in text and " ," not in text and " ." not in text, where
            assert " :" not in text and "None" not in text, where
            # The garbled stitching the first users saw, in each language:
            for garbled in ("Adresse die Empfängeradresse", "bei der empfangende", "dirección el destinatario",
                            "domain the recipient's domain", "the receiving mail server for the recipient's domain"):
                assert garbled not in text, where


def test_no_text_promises_a_retry_once_postbote_has_stopped():
    for lang, key, case, e in _cases():
        if case.endswith("state=expired"):
            assert not re.search(RETRY_WORDS[lang], e.fix, re.IGNORECASE), (lang, key, e.fix)


def test_unknown_facts_are_never_filled_with_stand_ins():
    for lang in LANGUAGES:
        assert "recipient" not in texts(lang)["_words"] and "receiving_server" not in texts(lang)["_words"]
