"""Shared fixtures: stores on SQLite and PostgreSQL, a real DNS server and real SMTP receivers on
loopback. Outside CI a missing PostgreSQL is a skip that says so; under CI=true it is a failure."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket

import pytest
from sqlalchemy import create_engine, text

from postbote.app import App
from postbote.db import upgrade
from postbote.testing import DnsServer, Zone

PG_URL = os.environ.get("POSTBOTE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Loopback addresses: fake MX hosts and the sending IPs (RFC 5735: all of 127/8 is loopback).
MX1, MX2, MX3 = "127.0.0.10", "127.0.0.11", "127.0.0.12"
SOURCE_IPS = ["127.0.0.20", "127.0.0.21"]


@pytest.fixture(autouse=True, scope="session")
def _no_stray_config():
    """A developer's ./postbote.toml must not leak into the tests."""
    os.environ["POSTBOTE_CONFIG"] = os.devnull  # an empty file: no settings from any file
    for name in [n for n in os.environ if n.startswith("POSTBOTE_") and n not in ("POSTBOTE_CONFIG", "POSTBOTE_TEST_PG_URL")]:
        del os.environ[name]


def _postgres_or_skip() -> None:
    try:
        engine = create_engine(PG_URL)
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:
        message = f"PostgreSQL at {PG_URL} is not reachable ({exc.__class__.__name__}); set POSTBOTE_TEST_PG_URL"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """An empty store, once per dialect: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/postbote.db"
        return
    _postgres_or_skip()
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def zone() -> Zone:
    return Zone()


@pytest.fixture
def dns_server(zone):
    with DnsServer(zone, "127.0.0.1") as server:
        yield server


def free_port(*hosts: str) -> int:
    """A TCP port free on every one of ``hosts``."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = probe.getsockname()[1]
        try:
            for host in hosts:
                with socket.socket() as s:
                    s.bind((host, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no common free port")


@pytest.fixture
def smtp_port() -> int:
    return free_port(MX1, MX2, MX3)


@pytest.fixture
def make_app(store_url, dns_server, smtp_port):
    """An App on the test store, resolving through the test DNS server, sending to smtp_port."""
    apps: list[App] = []

    def build(**overrides) -> App:
        settings = dict(
            DATABASE_URL=store_url,
            DNS_NAMESERVERS=[dns_server.address],
            DNS_TIMEOUT=2,
            SMTP_PORT=smtp_port,
            SMTP_TIMEOUT=5,
            SOURCE_IPS=SOURCE_IPS,
            HELO_NAME="out.platform.test",
            PLATFORM_DOMAIN="platform.test",
            RETRY_SCHEDULE=["1s"],
            RETRY_JITTER=0,
            LEASE_DURATION="30s",
            SECRET_KEY="test-master-key-not-for-production",
            ALLOW_TEST_DOMAINS=True,
            ALLOW_PRIVATE_MX=True,  # the fake MX hosts live on loopback
        )
        settings.update(overrides)
        app = App.from_environment(**settings)
        upgrade(app.engine)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.close()


def run_worker(app: App, *, timeout: float = 20, until_done: bool = True):
    return asyncio.run(app.worker().run(until_done=until_done, timeout=timeout))
