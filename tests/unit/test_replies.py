"""Reply classification and explanations: the labelled set of real replies, the rules table,
reply parsing, and the texts in every language."""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

import pytest

from postbote.replies import (
    LANGUAGES,
    ExplanationContext,
    Reply,
    classify,
    explain,
    explanation_ids,
    load_rules,
)
from postbote.replies.explain import PLACEHOLDERS, placeholders, texts
from postbote.vocab import ReplyCategory

DATA = Path(__file__).parents[1] / "data"
LABELLED = tomllib.loads((DATA / "replies.toml").read_text(encoding="utf-8"))["reply"]
HOLDOUT = tomllib.loads((DATA / "replies-holdout.toml").read_text(encoding="utf-8"))["reply"]


def test_the_labelled_set_is_large_sourced_and_covers_the_providers():
    assert len(LABELLED) >= 150
    assert all(r["source"].strip() for r in LABELLED + HOLDOUT)
    providers = Counter(classify(Reply.parse(r["text"]), r.get("mx")).provider for r in LABELLED)
    for provider in ("gmail", "outlook", "yahoo", "gmx", "web.de", "t-online", "icloud", "mimecast", "proofpoint"):
        assert providers[provider] >= 2, provider
    assert {r["category"] for r in LABELLED} == {c.value for c in ReplyCategory}


@pytest.mark.parametrize("case", LABELLED, ids=lambda r: r["text"][:60])
def test_every_labelled_reply_of_the_tuned_set(case):
    """The rules were written from this set: 100% here says only that they say what was meant."""
    result = classify(Reply.parse(case["text"]), case.get("mx"))
    assert (result.category.value, result.temporary) == (case["category"], case["temporary"]), result.rule


# The held-out replies were written down after the rules' first version; they have been looked at
# since (two labels corrected), so they are held out from the rules' first version only. The floor
# is what today's rules reach; the corpus held-out part (test_bounce_corpus.py) is the blind one.
HOLDOUT_FLOOR = {"category_and_retry": 96.0, "retry": 100.0}


def test_the_held_out_replies_are_reported_apart_from_the_tuned_ones():
    def figures(cases):
        results = [(classify(Reply.parse(c["text"]), c.get("mx")), c) for c in cases]
        both = sum((r.category.value, r.temporary) == (c["category"], c["temporary"]) for r, c in results)
        retry = sum(r.temporary == c["temporary"] for r, c in results)
        return 100.0 * both / len(cases), 100.0 * retry / len(cases)
    tuned, held = figures(LABELLED), figures(HOLDOUT)
    print(f"\nreplies tuned    {len(LABELLED):3}: category+retry {tuned[0]:5.1f}%  retry {tuned[1]:5.1f}%")
    print(f"replies held out {len(HOLDOUT):3}: category+retry {held[0]:5.1f}%  retry {held[1]:5.1f}%")
    assert held[0] >= HOLDOUT_FLOOR["category_and_retry"] and held[1] >= HOLDOUT_FLOOR["retry"]


# One reply per rule that no labelled reply reaches: proof that the rule can decide at all and is
# not shadowed by an earlier one. (The labelled set reaches the others.)
PROBES = {
    "local.null-mx": Reply.local("nomail.example publishes a null MX (RFC 7505): it accepts no mail", "5.1.10"),
    "local.no-such-domain": Reply.local("the domain gmial.example does not exist (NXDOMAIN)", "5.1.2"),
    "local.slowed-down": Reply.local("not attempted: busy.example asked to slow down (450 4.7.1 Too many messages); "
                                     "retry in 900 seconds"),
    "local.tls-required": Reply.local("mx.example [198.51.100.7] does not offer STARTTLS and TLS_MODE is required"),
    "local.tls-certificate": Reply.local("mx.example [198.51.100.7]: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
                                         "failed: Hostname mismatch during STARTTLS"),
    "local.greeting-refused": Reply.local("mx.example [198.51.100.7] refused the session at its greeting: 554 5.7.1 "
                                          "User unknown; trying the next MX host or again later"),
    "local.protocol-error": Reply.local("protocol error: mx.example [198.51.100.7] answered with a line that is no "
                                        "SMTP reply (no code): 'hello' during RCPT TO"),
    "local.nxdomain-unconfirmed": Reply.local("the domain kunde.example does not exist (NXDOMAIN); asking again later "
                                              "before giving up"),
    "enhanced.bad-system": Reply.from_smtp(550, "5.1.2 Zielsystem unbekannt"),
    "enhanced.unknown-user-temporary": Reply.from_smtp(450, "4.1.1 Empfängerprüfung negativ"),
    "enhanced.disabled": Reply.from_smtp(550, "5.2.1 Zustellung nicht möglich"),
    "enhanced.mailbox-full": Reply.from_smtp(552, "5.2.2 kein Platz mehr"),
    "enhanced.too-large": Reply.from_smtp(552, "5.3.4 Nachricht zu groß"),
    "enhanced.rate": Reply.from_smtp(450, "4.2.1 deferred"),
    "enhanced.auth": Reply.from_smtp(550, "5.7.26 Mensaje no autenticado"),
    "enhanced.security": Reply.from_smtp(550, "5.7.1 Nachricht abgewiesen"),
    "enhanced.greylist-hint": Reply.from_smtp(451, "4.7.0 Versuchen Sie es später erneut (later)"),
    "class.421": Reply.from_smtp(421, "mx.example closing"),
    "text.group-posting": Reply.from_smtp(550, "5.0.0 You may not have permission to post messages in the group"),
    "enhanced.expired": Reply.from_smtp(451, "4.4.7 nicht rechtzeitig zugestellt"),
    "text.refused-at-mail-from": Reply.from_smtp(550, "nein (SMTP error from remote mail server after MAIL FROM:<a@b.example>)"),
    "text.dns-try-again": Reply.from_smtp(451, "4.4.3 Name service error for name=kunde.test type=MX: Host not found, try again"),
    "code.no-mail-here": Reply.from_smtp(521, "5.3.2 mx.kunde.test nimmt keine Post an"),
    "text.null-mx": Reply.from_smtp(556, "5.1.10 nomail.example does not accept mail (null MX)"),
    "text.refused-at-greeting": Reply.from_smtp(554, "SMTP error from remote mail server after initial connection"),
    "class.452": Reply.from_smtp(452, "Speicher knapp"),
    "class.552": Reply.from_smtp(552, "Zu viel"),
    "enhanced.sender-address": Reply.from_smtp(553, "5.1.8 Absender nicht akzeptiert"),
    "enhanced.ambiguous-mailbox": Reply.from_smtp(550, "5.1.4 mehrdeutig"),
    "enhanced.mail-system": Reply.from_smtp(451, "4.3.5 falsch konfiguriert"),
    "enhanced.routing": Reply.from_smtp(554, "5.4.6 Schleife"),
    "enhanced.content": Reply.from_smtp(554, "5.6.3 Umwandlung erforderlich"),
    "enhanced.security-other": Reply.from_smtp(550, "5.7.14 Vertrauensstellung erforderlich"),
}


@pytest.mark.parametrize(("text", "category", "temporary"), [
    ("550 4.7.1 Zugriff verweigert", "policy", True),  # a transient policy refusal, not a missing user
    ("550 5.7.9 Zugang verweigert", "policy", False),
    ("550 5.6.0 Inhalt nicht erlaubt", "policy", False),
    ("553 5.1.7 Absender ungültig", "auth_failure", False),
    ("550 5.3.5 System falsch konfiguriert", "unavailable", False),
])
def test_the_enhanced_code_s_subject_outranks_the_reply_code_s_class(text, category, temporary):
    """RFC 3463 §3: the subject of an enhanced code (X.7 policy, X.6 content, X.1.7/X.1.8 the
    sender, X.3 the mail system) says more than 550's "mailbox unavailable"; the class decides the
    retry."""
    result = classify(Reply.parse(text))
    assert (result.category.value, result.temporary) == (category, temporary), result.rule


@pytest.mark.parametrize(("text", "category"), [
    ("554 Utilisateur inconnu", "invalid_recipient"),
    ("554 Destinataire inexistant", "invalid_recipient"),
    ("554 Empfänger unbekannt", "invalid_recipient"),
    ("554 Usuario desconocido", "invalid_recipient"),
    ("554 Utente inesistente", "invalid_recipient"),
    ("554 Usuário inexistente", "invalid_recipient"),
    ("554 Onbekende gebruiker", "invalid_recipient"),
    ("554 Adresat nie istnieje", "invalid_recipient"),
    ("554 Пользователь не существует", "invalid_recipient"),
    ("554 No such person at this address", "invalid_recipient"),
    ("554 Addressee unknown", "invalid_recipient"),
    ("552 Casella di posta piena", "mailbox_full"),
    ("552 Caixa postal cheia", "mailbox_full"),
    ("552 Quota dépassé", "mailbox_full"),
    ("452 Delivery postponed due to a full mailbox", "mailbox_full"),
    ("550 Account no longer active", "mailbox_disabled"),
    ("550 Compte désactivé", "mailbox_disabled"),
    ("550 Account disattivato", "mailbox_disabled"),
    ("421 Trop de connexions", "rate_limited"),
    ("421 Zu viele Verbindungen", "rate_limited"),
    ("421 Demasiadas conexiones", "rate_limited"),
    ("550 Message classé comme pourriel", "spam_content"),
    ("550 Rechazado: correo no deseado", "spam_content"),
    ("550 Domaine inexistant", "host_unknown"),
    ("550 Dominio inexistente", "host_unknown"),
    ("550 Nonexistent domain kunde.test", "host_unknown"),
    ("554 Your IP address 192.0.2.1 has been blocked", "blocklisted"),
    ("554 Adresse IP 192.0.2.1 bloquée", "blocklisted"),
    ("500 Line limit exceeded", "message_too_large"),
    ("554 Message not delivered within 2 days", "expired"),
    ("554 Maximum retry time exceeded", "expired"),
    ("550-Please turn on SMTP Authentication in your mail client.", "auth_failure"),
    ("553 mail.kunde.test does not exist", "host_unknown"),
    # RFC 5321 §3.3: refused at MAIL FROM, so the words are about the sender, not a recipient.
    ("553 5.1.0 <hr@platform.test>: user does not exist (SMTP error from remote mail server after MAIL FROM:<hr@platform.test>)",
     "auth_failure"),
])
def test_wording_families_across_languages(text, category):
    """The same meaning in the languages receivers answer in, not one provider's sentence."""
    assert classify(Reply.parse(text)).category.value == category


def test_every_rule_is_reachable_and_decides_its_own_cases():
    rules = load_rules()
    reached = Counter(classify(Reply.parse(r["text"]), r.get("mx")).rule for r in LABELLED + HOLDOUT)
    for rule_id, probe in PROBES.items():
        assert classify(probe).rule == rule_id
        reached[rule_id] += 1
    unreached = [r.id for r in rules.rules if not reached[r.id]]
    assert unreached == [], "rules no reply reaches (dead, or shadowed by an earlier rule)"


def test_rules_are_ordered_providers_then_wording_then_codes_then_classes():
    files = [r.file for r in load_rules().rules]
    assert files == sorted(files)
    assert files[0].startswith("05-local") and files[-1].startswith("40-classes")
    rules = load_rules().rules
    assert all(r.providers for r in rules if r.file.startswith("10-"))
    assert all(r.providers is None for r in rules if not r.file.startswith("10-"))
    assert rules[-1].category is ReplyCategory.UNKNOWN
    assert all(isinstance(r.category, ReplyCategory) and r.source for r in rules)


def test_every_category_has_a_retry_policy():
    assert set(load_rules().policies) == set(ReplyCategory)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_category_is_explained_in_every_language(lang):
    table = texts(lang)
    english = texts("en")
    assert {k for k in table if not k.startswith("_")} == explanation_ids()
    for category in ReplyCategory:
        assert table[category.value]["cause"] and table[category.value]["fix"]
    for key, entry in table.items():
        assert set(entry) == set(english[key]), key  # the same fields everywhere
        for text in entry.values():
            assert placeholders(text) <= PLACEHOLDERS, (key, text)
    providers = {p.id for p in load_rules().providers}
    for key in explanation_ids():
        category, _, provider = key.partition(".")
        assert category in {c.value for c in ReplyCategory}
        assert not provider or provider in providers


def test_explanations_are_concrete():
    blocked = classify(Reply.parse("554 5.7.1 Service unavailable; Client host [192.0.2.20] blocked using zen.spamhaus.org"))
    context = ExplanationContext(recipient="anna@firma.example", source_ips=("192.0.2.20", "192.0.2.21"),
                                 partner_ips=("198.51.100.5",), state="bounced")
    for lang in LANGUAGES:
        text = explain(blocked, lang, context).text()
        assert "192.0.2.20, 192.0.2.21" in text and "198.51.100.5" in text
    unknown = classify(Reply.parse("550 5.1.1 <anna@gmial.com>: Recipient address rejected: User unknown"))
    with_hint = explain(unknown, "de", ExplanationContext(recipient="anna@gmial.com", suggestion="anna@gmail.com"))
    assert "Meinten Sie anna@gmail.com?" in with_hint.text() and "anna@gmial.com" in with_hint.cause
    auth = classify(Reply.parse("550 5.7.26 Unauthenticated email from acme.example is not accepted due to domain's DMARC policy - gsmtp"))
    missing = explain(auth, "es", ExplanationContext(missing_records=("pb1._domainkey.acme.example CNAME",)))
    assert missing.id == "auth_failure.gmail" and "pb1._domainkey.acme.example CNAME" in missing.text()


def test_provider_specific_text_wins_and_falls_back_to_the_category():
    t_online = classify(Reply.parse("554 IP=192.0.2.20 - A problem occurred. (Ask your postmaster for help or to contact tosa@rx.t-online.de to clarify.) (BL)"))
    assert explain(t_online, "en").id == "blocklisted.t-online"
    gmx = classify(Reply.parse("554-gmx.net (mxgmx104) Nemesis ESMTP Service not available 554-No SMTP service 554-IP address is block listed."))
    assert explain(gmx, "en").id == "blocklisted"
    assert "GMX" in explain(gmx, "en").cause


@pytest.mark.parametrize("raw, code, enhanced, start", [
    ("550 5.1.1 <a@b.example>: Recipient address rejected: User unknown", 550, "5.1.1", "5.1.1 <a@b.example>"),
    ("550-5.7.26 one\n550-5.7.26 two\n550 5.7.26 three", 550, "5.7.26", "5.7.26 one two three"),
    ("550-5.7.26 one 550-5.7.26 two 550 5.7.26 three", 550, "5.7.26", "5.7.26 one two three"),
    ("host mx.b.example[192.0.2.1] said: 450 4.2.0 Greylisted (in reply to RCPT TO command)", 450, "4.2.0", "4.2.0 Greylisted"),
    ("smtp; 554 5.7.1 Blocked", 554, "5.7.1", "5.7.1 Blocked"),
    ("421 mx.example Service not available", 421, None, "mx.example Service"),
    ("connection refused", None, None, "connection refused"),
])
def test_reply_parsing(raw, code, enhanced, start):
    reply = Reply.parse(raw)
    assert (reply.code, reply.enhanced_code) == (code, enhanced)
    assert reply.flat().startswith(start)


def test_a_reply_named_wait_and_the_provider_by_mx_host():
    result = classify(Reply.parse("451 4.7.1 Too many connections, try again in 5 minutes"), "mx1.example")
    assert (result.category, result.retry_after, result.provider) == (ReplyCategory.RATE_LIMITED, 300, None)
    assert classify(Reply.parse("550 5.1.1 user unknown"), "MX00.T-ONLINE.DE.").provider == "t-online"


def test_a_refusal_for_spam_that_advises_spf_is_one_for_spam():
    text = ("550 5.7.1 Your email to group team@kunde.test was rejected due to spam classification. To address this "
            "issue: set up SPF records for your sending domain. https://support.google.com/a/answer/175365")
    assert classify(Reply.parse(text)).category.value == "spam_content"
