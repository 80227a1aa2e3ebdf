"""Per-test databases: a fresh SQLite file, or a PostgreSQL database cloned from
a migrated template (``DATAFERRY_TEST_POSTGRES_URL`` selects PostgreSQL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_ENV = "DATAFERRY_TEST_POSTGRES_URL"


def postgres_server_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


class PostgresDatabases:
    """Creates a migrated template once per run, then one clone per test."""

    def __init__(self, server_url: str) -> None:
        self.server_url = make_url(server_url)
        self.prefix = f"dataferry_t{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.admin = create_engine(
            self.server_url.set(database="postgres"), isolation_level="AUTOCOMMIT"
        )
        self.created: list[str] = []
        self.template = f"{self.prefix}_template"

    def check(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text("SELECT 1"))

    def url(self, name: str) -> str:
        return self.server_url.set(database=name).render_as_string(hide_password=False)

    def create_template(self) -> None:
        from dataferry.db import migrate
        from dataferry.db.engine import make_engine

        self._create(self.template)
        engine = make_engine(self.url(self.template))
        migrate.upgrade(engine)
        engine.dispose()

    def _create(self, name: str, template: str | None = None) -> None:
        with self.admin.connect() as conn:
            suffix = f' TEMPLATE "{template}"' if template else ""
            conn.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
        self.created.append(name)

    def clone(self) -> str:
        name = f"{self.prefix}_{len(self.created)}"
        self._create(name, self.template)
        return self.url(name)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in reversed(self.created):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'dataferry.db'}"


def iter_none() -> Iterator[None]:
    yield None
