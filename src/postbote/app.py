"""The composition root: every long-lived service is built here, from settings, once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Engine

from .db import open_engine, require_current
from .delivery import Worker
from .dns import Resolver
from .queue import GroupCommit
from .settings import Settings, load_settings


@dataclass
class App:
    settings: Settings

    @classmethod
    def from_environment(cls, *, config_may_be_missing: bool = False, **overrides) -> "App":
        return cls(load_settings(config_may_be_missing=config_may_be_missing, **overrides))

    @cached_property
    def engine(self) -> Engine:
        return open_engine(self.settings.DATABASE_URL, sqlite_synchronous=self.settings.SQLITE_SYNCHRONOUS)

    @cached_property
    def resolver(self) -> Resolver:
        return Resolver(self.settings)

    @cached_property
    def acceptor(self) -> GroupCommit:
        """The group commit that the API's acceptance writes through (see queue/group_commit.py)."""
        return GroupCommit(self.engine)

    def check_store(self) -> None:
        require_current(self.engine)

    def worker(self, owner: str | None = None) -> Worker:
        return Worker(self.settings, self.engine, self.resolver, owner=owner)

    def close(self) -> None:
        if "acceptor" in self.__dict__:
            self.acceptor.close()
        if "engine" in self.__dict__:
            self.engine.dispose()
