"""Typo suggestions for the domains people really use. An HR admin types
``anna.schmidt@gmial.com`` into a candidate's profile; Postbote offers ``anna.schmidt@gmail.com``
— never silently corrects it.

Two kinds of slip are recognised: a top-level domain that does not exist and is one keystroke
from a common one (``.con``, ``.cmo``, ``.dee``, ``.de.de``), and a domain a small edit away from
a big mailbox provider's (optimal string alignment distance: insertions, deletions,
substitutions and swaps of neighbours). A domain that is itself real and in use (``gmx.net``,
``mail.de``) is never "corrected", and short names need a closer match than long ones, so that
``bmw.de`` is not taken for ``gmx.de``. Pure: the caller decides, and may say whether the domain
exists in DNS."""

from __future__ import annotations

# Mailbox providers of the people Postbote's mail goes to: international, German, Austrian,
# Swiss and Spanish. Order is preference when two are equally close.
MAILBOX_PROVIDERS = (
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "yahoo.com", "icloud.com",
    "gmx.de", "web.de", "t-online.de", "gmx.net", "gmx.at", "gmx.ch", "outlook.de", "hotmail.de",
    "yahoo.de", "freenet.de", "posteo.de", "mailbox.org", "arcor.de", "online.de", "1und1.de",
    "vodafone.de", "aol.com", "aol.de", "me.com", "mac.com", "msn.com", "live.de", "gmx.com",
    "bluewin.ch", "hotmail.es", "outlook.es", "yahoo.es", "telefonica.net", "movistar.es",
    "protonmail.com", "proton.me", "ymail.com", "kabelmail.de", "magenta.de", "ionos.de",
)

# Real mail domains that look like a provider's; they are not typos.
LOOKALIKES = frozenset({
    "mail.de", "email.de", "mail.com", "gmx.es", "gmx.fr", "gmx.it", "gmx.us", "gmx.li", "web.com",
    "live.at", "live.fr", "hotmail.fr", "hotmail.it", "hotmail.co.uk", "yahoo.fr", "yahoo.co.uk",
    "outlook.at", "outlook.fr", "mailbox.com", "posteo.net", "t-online.at", "aol.co.uk",
    "icloud.de", "gmx.org", "freenet.net", "online.ms", "google.com",
})

# Top-level domains that do not exist and the one meant (one keystroke away).
_TLD_SLIPS = {
    "con": "com", "cmo": "com", "comm": "com", "cpm": "com", "vom": "com", "xom": "com", "ocm": "com",
    "coom": "com", "dee": "de", "ded": "de", "ed": "de", "dr": "de", "nett": "net", "nte": "net",
    "ent": "net", "orgg": "org", "ogr": "org", "ess": "es", "chh": "ch", "att": "at",
}


def suggest(address: str, *, domain_exists: bool | None = None) -> str | None:
    """The address probably meant, or None. ``domain_exists``: what DNS said, when asked."""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return None
    domain = domain.lower().rstrip(".")
    fixed = _fix_tld(domain)
    if fixed != domain:
        domain_exists = None  # the slip was in the TLD: what DNS said of it tells nothing
    best = _closest_provider(fixed) if domain_exists is not True else None
    candidate = best or fixed
    return f"{local}@{candidate}" if candidate != domain else None


def _fix_tld(domain: str) -> str:
    labels = domain.split(".")
    if len(labels) >= 3 and labels[-1] == labels[-2]:  # firma.de.de
        labels = labels[:-1]
    if labels[-1] in _TLD_SLIPS:
        labels[-1] = _TLD_SLIPS[labels[-1]]
    return ".".join(labels)


def _closest_provider(domain: str) -> str | None:
    if domain in MAILBOX_PROVIDERS or domain in LOOKALIKES:
        return None
    name = domain.rsplit(".", 1)[0]
    allowed = 1 if len(name) <= 5 else 2
    best, best_distance = None, allowed + 1
    for provider in MAILBOX_PROVIDERS:
        if abs(len(provider) - len(domain)) > allowed:
            continue
        distance = _osa_distance(domain, provider, allowed)
        if distance < best_distance:
            best, best_distance = provider, distance
    return best


def _osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance, giving up early past ``limit``."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = ca != cb
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]
