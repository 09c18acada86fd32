import pytest

from postbote.recipients import MAILBOX_PROVIDERS, suggest

CASES = [
    # typos of the providers people really use
    ("anna.schmidt@gmial.com", "anna.schmidt@gmail.com"),
    ("anna@gmal.com", "anna@gmail.com"),
    ("anna@gmai.com", "anna@gmail.com"),
    ("anna@gnail.com", "anna@gmail.com"),
    ("anna@gmail.co", "anna@gmail.com"),
    ("anna@gmail.con", "anna@gmail.com"),
    ("anna@gmail.cmo", "anna@gmail.com"),
    ("anna@gmaill.com", "anna@gmail.com"),
    ("anna@googlemial.com", "anna@googlemail.com"),
    ("anna@hotmial.com", "anna@hotmail.com"),
    ("anna@hotmal.de", "anna@hotmail.de"),
    ("anna@outlok.com", "anna@outlook.com"),
    ("anna@outllook.de", "anna@outlook.de"),
    ("anna@yaho.de", "anna@yahoo.de"),
    ("anna@yahooo.com", "anna@yahoo.com"),
    ("anna@icloud.con", "anna@icloud.com"),
    ("anna@iclod.com", "anna@icloud.com"),
    ("anna@gmx.dee", "anna@gmx.de"),
    ("anna@gmx.ed", "anna@gmx.de"),
    ("anna@gmx.de.de", "anna@gmx.de"),
    ("anna@gxm.de", "anna@gmx.de"),
    ("anna@gmx.nte", "anna@gmx.net"),
    ("anna@wbe.de", "anna@web.de"),
    ("anna@web.dr", "anna@web.de"),
    ("anna@t-onlne.de", "anna@t-online.de"),
    ("anna@tonline.de", "anna@t-online.de"),
    ("anna@t-online.dee", "anna@t-online.de"),
    ("anna@t-onilne.de", "anna@t-online.de"),
    ("anna@freenett.de", "anna@freenet.de"),
    ("anna@posteo.dde", "anna@posteo.de"),
    ("anna@postoe.de", "anna@posteo.de"),
    ("anna@mailbox.ogr", "anna@mailbox.org"),
    ("anna@arcor.dee", "anna@arcor.de"),
    ("anna@bluewin.chh", "anna@bluewin.ch"),
    ("anna@blewin.ch", "anna@bluewin.ch"),
    ("ana@telefonica.nte", "ana@telefonica.net"),
    ("ana@movistar.ess", "ana@movistar.es"),
    ("ana@hotmail.ess", "ana@hotmail.es"),
    # company domains with a slipped TLD
    ("hr@acme.con", "hr@acme.com"),
    ("hr@firma-beispiel.de.de", "hr@firma-beispiel.de"),
    # real domains, however close to a provider: never "corrected"
    ("anna@gmail.com", None),
    ("anna@gmx.net", None),
    ("anna@gmx.at", None),
    ("anna@gmx.ch", None),
    ("anna@gmx.es", None),
    ("anna@mail.de", None),
    ("anna@email.de", None),
    ("anna@web.com", None),
    ("anna@live.de", None),
    ("anna@outlook.es", None),
    ("anna@online.de", None),
    ("anna@1und1.de", None),
    ("anna@bmw.de", None),
    ("anna@gmbh.de", None),
    ("anna@siemens.com", None),
    ("anna@telekom.de", None),
    ("anna@uni-hamburg.de", None),
    ("anna@ing.de", None),
    ("anna@dm.de", None),
    ("anna@google.com", None),
]


@pytest.mark.parametrize("address, expected", CASES)
def test_suggestions(address, expected):
    assert suggest(address) == expected


def test_a_domain_that_exists_is_not_taken_for_a_provider_but_a_tld_slip_still_is():
    assert suggest("anna@gmaul.com", domain_exists=True) is None
    assert suggest("anna@gmaul.com", domain_exists=False) == "anna@gmail.com"
    assert suggest("hr@acme.con", domain_exists=False) == "hr@acme.com"


def test_the_local_part_is_kept_as_written_and_nonsense_gets_nothing():
    assert suggest("Anna.Schmidt+bewerbung@Gmial.com") == "Anna.Schmidt+bewerbung@gmail.com"
    assert suggest("no-at-sign") is None and suggest("@gmial.com") is None


def test_every_provider_is_its_own_answer():
    assert all(suggest(f"x@{domain}") is None for domain in MAILBOX_PROVIDERS)
