"""Fixtures for every layer. ``DATAFERRY_TEST_POSTGRES_URL`` runs the suite on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dataferry.config import Settings
from tests.support.databases import PostgresDatabases, postgres_server_url, sqlite_url
from tests.support.server import Server
from tests.support.services import unavailable


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabases | None]:
    server = postgres_server_url()
    if server is None:
        yield None
        return
    dbs = PostgresDatabases(server)
    try:
        dbs.check()
    except Exception as exc:
        unavailable(f"PostgreSQL at {server} is not reachable: {exc}")
    dbs.create_template()
    yield dbs
    dbs.drop_all()


@pytest.fixture
def database_url(tmp_path: Path, postgres: PostgresDatabases | None) -> str:
    """A fresh, empty-of-data database for this test (SQLite file or PostgreSQL clone)."""
    if postgres is None:
        return sqlite_url(tmp_path)
    return postgres.clone()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        home=tmp_path / "home",
        database_url=database_url,
        jobs={
            "tick_seconds": 0.2,
            "lease_seconds": 2,
            "backoff_base": 0.1,
            "backoff_cap": 0.5,
            "progress_interval": 0.1,
        },  # type: ignore[arg-type]
    )


@pytest.fixture
def core(settings: Settings) -> Iterator[Any]:
    """The service core, not started (no executor threads): call ``core.start()`` to run jobs."""
    from dataferry.app import build

    c = build(settings)
    yield c
    c.stop()


@pytest.fixture
def server_factory(tmp_path: Path, database_url: str) -> Iterator[Any]:
    """Start real servers; all share this test's database unless told otherwise."""
    from cryptography.fernet import Fernet

    started: list[Server] = []
    # Servers on one database must share the key that seals endpoint secrets.
    key = Fernet.generate_key().decode()

    def make(name: str = "a", env: dict[str, str] | None = None, db: str | None = None) -> Server:
        srv = Server(
            tmp_path / f"home-{name}",
            db or database_url,
            {"DATAFERRY_SECRET_KEY": key, **(env or {})},
        )
        started.append(srv)
        return srv.start()

    yield make
    for srv in started:
        srv.kill()


@pytest.fixture
def server(server_factory: Any) -> Server:
    srv: Server = server_factory()
    return srv
