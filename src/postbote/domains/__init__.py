"""Sender domains: the CNAME scheme, DKIM keys and signing, verification, the platform zone, the
health check, and the sender choice at send time."""

from .dkim import sign
from .partners import Partner, add_partner, list_partners, partner_ips, partner_verdicts, remove_partner, update_partner
from .publish import platform_records, publish, zone_file
from .records import Record, tenant_records
from .sender import SenderDecision, choose_sender
from .store import (
    DkimKey,
    Domain,
    add_domain,
    domain_keys,
    ensure_platform_keys,
    find_domain,
    get_domain,
    list_domains,
    published_keys,
)
from .verify import PLATFORM_NOT_PUBLISHED, POINTS_ELSEWHERE, Verification, check_records, record_advice, verify_domain

__all__ = [
    "PLATFORM_NOT_PUBLISHED",
    "POINTS_ELSEWHERE",
    "record_advice",
    "sign",
    "Partner",
    "add_partner",
    "list_partners",
    "partner_ips",
    "partner_verdicts",
    "remove_partner",
    "update_partner",
    "platform_records",
    "publish",
    "zone_file",
    "Record",
    "tenant_records",
    "SenderDecision",
    "choose_sender",
    "DkimKey",
    "Domain",
    "add_domain",
    "domain_keys",
    "ensure_platform_keys",
    "find_domain",
    "get_domain",
    "list_domains",
    "published_keys",
    "Verification",
    "check_records",
    "verify_domain",
]
