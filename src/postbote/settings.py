"""The one typed settings schema. Every setting has a default and a description; the values come,
strongest first, from arguments, ``POSTBOTE_*`` environment variables, and ``postbote.toml``
(the file named by ``POSTBOTE_CONFIG``, else ``./postbote.toml``).

Lists are written comma-separated in the environment (``POSTBOTE_SOURCE_IPS=192.0.2.1,192.0.2.2``)
and as TOML arrays or strings in the file; durations as ``30s``, ``5m``, ``1h``, ``4d``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from functools import cached_property
from pathlib import Path
from typing import Literal, Annotated, Any, NamedTuple

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .durations import format_duration, parse_duration
from .errors import ConfigError
from .vocab import TlsMode

CommaList = Annotated[list[str], NoDecode]


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def config_path() -> Path:
    return Path(os.environ.get("POSTBOTE_CONFIG", "postbote.toml"))


class Partner(BaseModel):
    """A third party that sends mail in tenants' names."""

    name: str
    ips: list[str] = Field(default_factory=list)
    spf_include: str = ""  # the domain tenants add as include: to their SPF record
    dkim_selector: str = ""  # the selector whose CNAME tenants publish for the partner's DKIM key
    hosts: list[str] = Field(default_factory=list)  # host names it sends from (resolved for the allowlist kit)

    @field_validator("ips")
    @classmethod
    def _check(cls, value: list[str]) -> list[str]:
        for ip in value:
            ipaddress.ip_address(ip)
        return value


class StageTimeouts(NamedTuple):
    """Seconds per SMTP stage (RFC 5321 §4.5.3.2)."""

    connect: float
    greeting: float
    command: float
    data: float
    block: float
    end: float

    @property
    def longest(self) -> float:
        return max(self)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POSTBOTE_", extra="ignore", frozen=True)

    DATABASE_URL: str = Field(
        "sqlite:///./var/postbote.db",
        description="SQLAlchemy URL of the store: sqlite:///path (embedded, WAL) or "
        "postgresql+psycopg://user@host/db.",
    )
    DNS_NAMESERVERS: CommaList = Field(
        default_factory=list,
        description="Resolvers to ask, as ip or ip:port; empty means the system's (resolv.conf).",
    )
    DNS_TIMEOUT: float = Field(5.0, description="Seconds one DNS lookup may take in all.")
    SMTP_PORT: int = Field(25, ge=1, le=65535, description="Port of receiving servers (25).")
    SMTP_TIMEOUT: float = Field(
        0.0, ge=0, description="When above 0, no SMTP stage waits longer than this many seconds "
        "(test set-ups); 0: each stage's own timeout below applies.",
    )
    # RFC 5321 §4.5.3.2: each stage has its own timeout. The long one after end-of-data keeps a
    # slow receiver from being sent the same message twice.
    SMTP_CONNECT_TIMEOUT: str = Field("30s", description="Opening the TCP connection to an MX host.")
    SMTP_GREETING_TIMEOUT: str = Field("5m", description="Waiting for the 220 greeting (RFC 5321 §4.5.3.2.1).")
    SMTP_COMMAND_TIMEOUT: str = Field(
        "5m", description="Waiting for the reply to EHLO, STARTTLS, MAIL, RCPT or RSET (§4.5.3.2.2–3)."
    )
    SMTP_DATA_TIMEOUT: str = Field("2m", description="Waiting for the 354 after DATA (§4.5.3.2.4).")
    SMTP_DATA_BLOCK_TIMEOUT: str = Field(
        "3m", description="Each block of the message the receiver is slow to read (§4.5.3.2.5)."
    )
    SMTP_DATA_END_TIMEOUT: str = Field(
        "10m", description="Waiting for the reply after the end of the message (§4.5.3.2.6); when "
        "it runs out the message may have been delivered, and the attempt says so.",
    )
    ALLOW_PRIVATE_MX: bool = Field(
        False, description="Deliver to MX addresses in loopback, private, link-local and other "
        "non-public ranges; for test set-ups. Off: such an MX is refused without a connection.",
    )
    TLS_CA_FILE: str = Field(
        "", description="PEM file of the certificate authorities TLS_MODE=verify and https webhook "
        "calls trust; empty: the system's.",
    )
    SOURCE_IPS: CommaList = Field(
        default_factory=list,
        description="Local addresses to send from; a destination keeps one of them across "
        "retries. Empty: the kernel's choice.",
    )
    SHAPING_RULES: str = Field(
        "", description="TOML file of the receiving sites (providers matched by MX host name) and "
        "their limits; empty: the rules shipped with Postbote.",
    )
    HELO_NAME: str = Field(
        "", description="Name given in EHLO; empty: this machine's fully qualified name."
    )
    PLATFORM_DOMAIN: str = Field(
        "postbote.localhost", description="The platform's own mail domain."
    )
    DEFAULT_SENDER: str = Field(
        "", description="Default From address; empty: notification@PLATFORM_DOMAIN."
    )
    RETRY_SCHEDULE: CommaList = Field(
        default_factory=lambda: ["5m", "10m", "20m", "40m", "1h", "2h", "4h"],
        description="Waits after the 1st, 2nd … temporary failure; the last one repeats.",
    )
    RETRY_JITTER: float = Field(
        0.1, ge=0, le=1, description="Each wait is stretched or shrunk by up to this fraction."
    )
    MAX_LIFETIME: str = Field(
        "4d", description="How long a message is retried before it expires (RFC 5321 §4.5.4.1)."
    )
    TLS_MODE: TlsMode = Field(
        TlsMode.OPPORTUNISTIC, description="STARTTLS: opportunistic, required, verify (required, "
        "and the certificate must be valid for the MX host) or off."
    )
    API_LISTEN: str = Field("127.0.0.1:8025", description="host:port of the REST API.")
    LEASE_DURATION: str = Field(
        "10m",
        description="How long a worker owns the deliveries it claimed; a dead worker's "
        "deliveries are taken over after this.",
    )
    MAX_INFLIGHT: int = Field(
        2000, ge=1, description="Deliveries one worker holds claimed at a time."
    )
    MAX_CONNECTIONS_PER_DOMAIN: int = Field(
        10, ge=1, description="Parallel SMTP connections one worker opens to one domain."
    )
    LOG_LEVEL: str = Field("INFO", description="Logging level of serve and worker.")
    PLATFORM_NAME: str = Field(
        "Postbote", description='Shown in fallback senders: "ACME GmbH via <PLATFORM_NAME>".'
    )
    DKIM_ZONE: str = Field(
        "",
        description="The platform's DNS zone holding DKIM keys and the return path; empty: "
        "PLATFORM_DOMAIN.",
    )
    BOUNCE_MX: str = Field(
        "", description="MX host of the return-path domain; empty: mx.<DKIM_ZONE>."
    )
    SECRET_KEY: str = Field(
        "",
        description="Master key that encrypts DKIM private keys at rest (postbote init "
        "writes a random one). Keep it secret; changing it makes stored keys unreadable.",
    )
    DNS_UPDATE_SERVER: str = Field(
        "", description="ip[:port] of the platform zone's authoritative server (RFC 2136)."
    )
    DNS_UPDATE_TSIG_NAME: str = Field("", description="TSIG key name for DNS updates.")
    DNS_UPDATE_TSIG_SECRET: str = Field("", description="TSIG secret (base64) for DNS updates.")
    DNS_UPDATE_TSIG_ALGORITHM: str = Field(
        "hmac-sha256", description="TSIG algorithm for DNS updates."
    )
    DOMAIN_RECHECK_INTERVAL: str = Field(
        "1h", description="How often serve and worker re-check the DNS records of sender domains."
    )
    BATCH_MAX_MESSAGES: int = Field(
        500, ge=1, le=10_000, description="Most messages one POST /v1/messages/batch may carry.",
    )
    BULK_THRESHOLD: int = Field(
        50, ge=1, description="A message with at least this many recipients re-checks its "
        "sender domain in DNS before it is accepted.",
    )
    PARTNERS: list[Partner] = Field(
        default_factory=list,
        description="Third parties that send in tenants' names (the e-signature provider): "
        "name, ips, hosts, spf_include, dkim_selector.",
    )
    ALLOW_TEST_DOMAINS: bool = Field(
        False, description="Accept recipients in the reserved .test domain (RFC 6761), and only "
        "those, still checked in DNS; for test set-ups.",
    )
    INBOUND_LISTEN: str = Field(
        "", description="host:port of the bounce and complaint receiver started by serve; "
        "empty: not started (production: 0.0.0.0:25 behind BOUNCE_MX).",
    )
    SQLITE_SYNCHRONOUS: Literal["NORMAL", "FULL"] = Field(
        "NORMAL", description="SQLite only. NORMAL: an accepted message survives a crash of the process; "
        "FULL: also a power loss, at the cost of a disk flush per commit (README, 'Acceptance').",
    )
    RETURN_PATH_LIFETIME: str = Field(
        "30d", description="How long after sending a message's return path takes bounces and complaints; "
        "later ones are refused like forged ones.",
    )
    MAX_DOMAINS_PER_TENANT: int = Field(
        20, ge=1, description="Sender domains one tenant may claim (more: 409 domain_limit).",
    )
    MAX_REQUEST_BYTES: int = Field(
        5_000_000, ge=10_000, description="Largest API request body, in bytes (larger: 413 request_too_large, "
        "refused before it is read).",
    )
    IDEMPOTENCY_MAX_ANSWER_BYTES: int = Field(
        1_000_000, ge=1000, description="Largest answer kept for an Idempotency-Key, in bytes (a repeat of a larger "
        "one is 409 idempotency_answer_too_large and is not done again).",
    )
    MAX_MESSAGE_BYTES: int = Field(
        2_000_000, ge=10_000, description="Largest message (subject, text and HTML together, UTF-8), in bytes "
        "(larger: 413 message_too_large, refused before any DNS lookup).",
    )
    MAX_RECIPIENTS: int = Field(
        1000, ge=1, description="Most recipients of one message, and addresses in one check (more: 422 "
        "too_many_recipients).",
    )
    API_RATE_LIMIT: float = Field(
        3000.0, ge=0, description="API requests per second and tenant, on average, in bursts of twice that "
        "(more: 429 rate_limited with Retry-After); 0: no limit. Counted per process; a batch is one request.",
    )
    DNS_MAX_CONCURRENCY: int = Field(
        100, ge=1, description="DNS queries in flight at once in one process; the rest wait their turn.",
    )
    INBOUND_MAX_CONNECTIONS: int = Field(
        200, ge=1, description="Connections the bounce receiver serves at once; more are answered 421 and closed.",
    )
    INBOUND_MAX_RECIPIENTS: int = Field(
        100, ge=1, description="RCPTs the bounce receiver takes in one transaction; more: 452 (RFC 5321 §4.5.3.1.10).",
    )
    INBOUND_IDLE_TIMEOUT: float = Field(
        60.0, gt=0, description="Seconds a bounce receiver connection may stay silent before it is closed.",
    )
    INBOUND_MAX_SIZE: int = Field(
        10_000_000, ge=1000, description="Largest bounce or complaint the receiver accepts, in bytes."
    )
    LANGUAGE: str = Field(
        "en", description="Default language of explanations: de, en or es."
    )
    PUBLIC_URL: str = Field(
        "", description="Base URL at which recipients reach the API, for one-click unsubscribe "
        "links in bulk mail (RFC 8058: HTTPS); empty: https://<PLATFORM_DOMAIN>.",
    )
    RELEASE_HELD_ON_VERIFY: bool = Field(
        True, description="Send held mail by itself once its sender domain is verified (held by the "
        "tenant's hold policy); false: only 'postbote message release' sends it.",
    )
    PARTNER_IPS: CommaList = Field(
        default_factory=list,
        description="IP addresses of partners that send mail in tenants' names (the "
        "e-signature provider); named in allowlisting advice.",
    )
    WEBHOOK_RETRY_SCHEDULE: CommaList = Field(
        default_factory=lambda: ["30s", "2m", "10m", "30m", "1h", "2h", "4h"],
        description="Waits after the 1st, 2nd … failed webhook call; the last one repeats.",
    )
    WEBHOOK_MAX_AGE: str = Field(
        "24h", description="How long a webhook call is retried before it is parked as dead (a "
        "replay sends it again).",
    )
    WEBHOOK_TIMEOUT: float = Field(
        10.0, gt=0, le=120, description="Seconds a webhook receiver has to answer, connection included.",
    )
    WEBHOOK_MAX_ENDPOINTS: int = Field(
        20, ge=1, le=1000, description="Webhook endpoints a tenant may register.",
    )
    ALLOW_PRIVATE_WEBHOOKS: bool = Field(
        False, description="Call webhook URLs on loopback, private and other non-public addresses, "
        "and over plain http; for test set-ups. Off: https to public addresses only.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_path())
        return (init_settings, env_settings, toml)

    _split_lists = field_validator(
        "DNS_NAMESERVERS", "SOURCE_IPS", "RETRY_SCHEDULE", "PARTNER_IPS", "WEBHOOK_RETRY_SCHEDULE", mode="before"
    )(_split)

    @field_validator("LANGUAGE")
    @classmethod
    def _check_language(cls, value: str) -> str:
        if value not in ("de", "en", "es"):
            raise ValueError("use de, en or es")
        return value

    @field_validator("SOURCE_IPS", "PARTNER_IPS")
    @classmethod
    def _check_ips(cls, value: list[str]) -> list[str]:
        for ip in value:
            ipaddress.ip_address(ip)
        return value

    @field_validator("DNS_NAMESERVERS")
    @classmethod
    def _check_nameservers(cls, value: list[str]) -> list[str]:
        for entry in value:
            parse_host_port(entry, default_port=53)
        return value

    @field_validator("RETRY_SCHEDULE", "WEBHOOK_RETRY_SCHEDULE")
    @classmethod
    def _check_schedule(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("the retry schedule needs at least one step")
        for step in value:
            parse_duration(step)
        return value

    @field_validator("MAX_LIFETIME", "LEASE_DURATION", "DOMAIN_RECHECK_INTERVAL", "RETURN_PATH_LIFETIME", "WEBHOOK_MAX_AGE",
                     "SMTP_CONNECT_TIMEOUT",
                     "SMTP_GREETING_TIMEOUT", "SMTP_COMMAND_TIMEOUT", "SMTP_DATA_TIMEOUT",
                     "SMTP_DATA_BLOCK_TIMEOUT", "SMTP_DATA_END_TIMEOUT")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("API_LISTEN")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_host_port(value, default_port=8025)
        return value

    # Derived values, computed once.

    @cached_property
    def retry_steps(self) -> tuple[float, ...]:
        return tuple(parse_duration(step) for step in self.RETRY_SCHEDULE)

    @cached_property
    def webhook_retry_steps(self) -> tuple[float, ...]:
        return tuple(parse_duration(step) for step in self.WEBHOOK_RETRY_SCHEDULE)

    @cached_property
    def webhook_max_age_seconds(self) -> float:
        return parse_duration(self.WEBHOOK_MAX_AGE)

    @cached_property
    def max_lifetime_seconds(self) -> float:
        return parse_duration(self.MAX_LIFETIME)

    @cached_property
    def lease_seconds(self) -> float:
        return parse_duration(self.LEASE_DURATION)

    @cached_property
    def smtp_timeouts(self) -> "StageTimeouts":
        cap = self.SMTP_TIMEOUT or float("inf")
        return StageTimeouts(*(min(parse_duration(v), cap) for v in (
            self.SMTP_CONNECT_TIMEOUT, self.SMTP_GREETING_TIMEOUT, self.SMTP_COMMAND_TIMEOUT,
            self.SMTP_DATA_TIMEOUT, self.SMTP_DATA_BLOCK_TIMEOUT, self.SMTP_DATA_END_TIMEOUT)))

    @cached_property
    def helo_name(self) -> str:
        return self.HELO_NAME or socket.getfqdn()

    @cached_property
    def dkim_zone(self) -> str:
        return (self.DKIM_ZONE or self.PLATFORM_DOMAIN).rstrip(".").lower()

    @cached_property
    def return_path_host(self) -> str:
        return f"rp.{self.dkim_zone}"

    @cached_property
    def bounce_mx(self) -> str:
        return self.BOUNCE_MX or f"mx.{self.dkim_zone}"

    @cached_property
    def return_path_days(self) -> int:
        return max(1, -(-int(parse_duration(self.RETURN_PATH_LIFETIME)) // 86400))

    @cached_property
    def recheck_seconds(self) -> float:
        return parse_duration(self.DOMAIN_RECHECK_INTERVAL)

    @cached_property
    def default_sender(self) -> str:
        return self.DEFAULT_SENDER or f"notification@{self.PLATFORM_DOMAIN}"

    @cached_property
    def nameservers(self) -> list[tuple[str, int]]:
        return [parse_host_port(entry, default_port=53) for entry in self.DNS_NAMESERVERS]

    @cached_property
    def public_url(self) -> str:
        return (self.PUBLIC_URL or f"https://{self.PLATFORM_DOMAIN}").rstrip("/")

    @cached_property
    def api_host_port(self) -> tuple[str, int]:
        return parse_host_port(self.API_LISTEN, default_port=8025)

    def describe(self) -> dict[str, str]:
        """Each setting with its current value as a person would write it."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, list):
                value = ",".join(v if isinstance(v, str) else v.name for v in value)
            if name == "SECRET_KEY" or name.endswith("TSIG_SECRET"):
                value = "(set)" if value else ""
            out[name] = str(value)
        return out


def parse_host_port(text: str, *, default_port: int) -> tuple[str, int]:
    """``ip``, ``ip:port``, ``[v6]:port`` or ``v6`` → (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":") or str(default_port)
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not host, host:port or [v6]:port")
    return host, int(port)


def load_settings(*, config_may_be_missing: bool = False, **overrides: Any) -> Settings:
    """Read the settings, turning every mistake into one ConfigError that names the file, the line
    and the setting: a TOML syntax error, a key that is no setting (with the one probably meant),
    a value that does not fit, or a POSTBOTE_CONFIG that names a file that is not there
    (``config_may_be_missing``: ``postbote init``, which writes it)."""
    from pydantic import ValidationError

    path = config_path()
    text = _config_text(path, config_may_be_missing)
    where = _check_config_text(path, text) if text is not None else {}
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or "settings"
        top = str(first["loc"][0]) if first["loc"] else ""
        from_file = top in where and f"POSTBOTE_{top}" not in os.environ and top not in overrides
        place = f" ({path}, line {where[top]})" if from_file else ""
        raise ConfigError(
            f"Setting {name} is invalid{place}: {first['msg']}.",
            hint=f"Fix {name} in {path if from_file else 'postbote.toml'} or POSTBOTE_{top or name}.",
        ) from None


def _config_text(path: Path, missing_ok: bool) -> str | None:
    """The file's text; None when there is none to read. The default ./postbote.toml may be
    absent; a file POSTBOTE_CONFIG names must exist (a typo there would silently drop every
    setting in it)."""
    named = "POSTBOTE_CONFIG" in os.environ and path.resolve() != Path("postbote.toml").resolve()
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if named and not missing_ok:
            raise ConfigError(f"The configuration file {path} named by POSTBOTE_CONFIG does not exist.",
                              hint="Correct POSTBOTE_CONFIG, unset it to use ./postbote.toml, or create the file "
                                   "with 'postbote init'.") from None
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"The configuration file {path} cannot be read: {exc.__class__.__name__}.",
                          hint="Check that it is a readable UTF-8 text file.") from None


def _check_config_text(path: Path, text: str) -> dict[str, int]:
    """Setting name → the line it is set on; raises ConfigError for a syntax error or a key that
    is no setting."""
    import difflib
    import re
    import tomllib

    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        # "at end of document": something opened was never closed; the last line is where it shows.
        line = f", line {found.group(1) if found else max(1, len(text.splitlines()))}"
        reason = re.sub(r"\s*\(at (line|end of document)[^)]*\)", "", str(exc))
        raise ConfigError(f"{path}{line}: the file is not valid TOML: {reason}.",
                          hint="Write each setting as NAME = value; strings in double quotes, lists as [\"a\", \"b\"].") from None
    lines = text.splitlines()

    def line_of(key: str) -> int:
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        return next((n for n, content in enumerate(lines, 1) if pattern.match(content)), 0)

    known = {name.upper(): name for name in Settings.model_fields}
    where = {}
    for key in table:
        if key.upper() in known:
            where[known[key.upper()]] = line_of(key)
            continue
        guess = difflib.get_close_matches(key.upper(), list(known), n=1, cutoff=0.6)
        meant = f" Did you mean {guess[0]}?" if guess else ""
        raise ConfigError(f"{path}, line {line_of(key)}: {key} is not a setting.{meant}",
                          hint="The settings are listed in the README and in the file 'postbote init' writes.")
    return where


__all__ = ["Settings", "load_settings", "parse_host_port", "config_path", "format_duration"]
