"""Fixtures for every layer. ``DATAFERRY_TEST_POSTGRES_URL`` runs the suite on PostgreSQL;
``DATAFERRY_TEST_EXECUTOR=celery`` runs the job tests (marker ``executors``) on Celery
workers with a real broker (``make test-celery``). The PostgreSQL pass leaves out the
tests that cannot depend on the database (``database_agnostic``) and those of a
SQLite-only feature (``sqlite_only``), which are deselected there, not skipped."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from dataferry.config import Settings
from tests.support.celery import (
    WorkerGroup,
    broker_url,
    celery_env,
    embedded_workers,
    new_prefix,
    purge_prefix,
    registered_queues,
    require_broker,
    selected_executor,
)
from tests.support.databases import PostgresDatabases, postgres_server_url, sqlite_url
from tests.support.server import Server
from tests.support.services import unavailable

EXECUTOR = selected_executor()


def database_agnostic(item: pytest.Item) -> bool:
    """A test whose outcome cannot depend on the database behind the service: a unit
    test, a browser test (what the page's script does; ``test_dashboard_pages`` reads
    the pages on both databases), or one marked ``database_agnostic``."""
    if item.path.parent.name in ("unit", "e2e"):
        return True
    return item.get_closest_marker("database_agnostic") is not None


def postgres_pass() -> bool:
    """The run on PostgreSQL that follows the SQLite one (not the Celery pass)."""
    return EXECUTOR != "celery" and postgres_server_url() is not None


def pytest_report_header(config: pytest.Config) -> str | None:
    if postgres_pass():
        return "PostgreSQL pass: database-agnostic tests are left out (the SQLite pass runs them)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``celery_only`` belong to the Celery pass; leave them out of the others.
    The PostgreSQL pass leaves out database-agnostic tests: the SQLite pass ran them."""
    if EXECUTOR == "celery":
        return
    on_postgres = postgres_pass()
    keep: list[Any] = []
    drop: list[Any] = []
    for item in items:
        left_out = item.get_closest_marker("celery_only") or (
            on_postgres and (database_agnostic(item) or item.get_closest_marker("sqlite_only"))
        )
        (drop if left_out else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def celery_broker() -> Iterator[tuple[str, str]]:
    """(broker URL, queue prefix) for this test; its Redis queues are deleted afterwards."""
    url = broker_url()
    require_broker(url)
    prefix = new_prefix()
    yield url, prefix
    purge_prefix(url, prefix)


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
def consumer_db(tmp_path: Path, postgres: PostgresDatabases | None) -> str:
    """A second instance's own database (the consumer of a provider/consumer pair)."""
    if postgres is None:
        folder = tmp_path / "consumer-db"
        folder.mkdir()
        return sqlite_url(folder)
    return postgres.clone()


@pytest.fixture
def executor_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """``DATAFERRY_*`` variables selecting this run's executor (empty: inline)."""
    if EXECUTOR != "celery":
        return {}
    url, prefix = request.getfixturevalue("celery_broker")
    return celery_env(url, prefix)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, executor_env: dict[str, str]) -> Settings:
    extra: dict[str, Any] = {}
    if executor_env:
        extra = {
            "executor": "celery",
            "broker_url": executor_env["DATAFERRY_BROKER_URL"],
            "celery": {
                "queue_prefix": executor_env["DATAFERRY_CELERY__QUEUE_PREFIX"],
                "redispatch_seconds": 1,
            },
        }
    return Settings(
        home=tmp_path / "home",
        database_url=database_url,
        **extra,
        jobs={
            "tick_seconds": 0.2,
            "lease_seconds": 2,
            "backoff_base": 0.1,
            "backoff_cap": 0.5,
            "progress_interval": 0.1,
        },
    )


@pytest.fixture
def core(settings: Settings) -> Iterator[Any]:
    """The service core, not started (no executor threads): call ``core.start()`` to run jobs.

    In the Celery pass, ``core.start()`` also starts a real Celery worker in this
    process (its job kinds are registered here) and the scheduler tick."""
    from dataferry.app import build

    c = build(settings)
    with ExitStack() as stack:
        if settings.executor == "celery":
            plain_start = c.start

            def start() -> None:
                plain_start()
                queues = sorted({*c.registry.queues(), "default"})
                stack.enter_context(embedded_workers(c, queues))

            c.start = start  # type: ignore[method-assign]
        try:
            yield c
        finally:
            stack.close()
            c.stop()


@pytest.fixture
def server_factory(
    tmp_path: Path, database_url: str, executor_env: dict[str, str]
) -> Iterator[Any]:
    """Start real servers; all share this test's database unless told otherwise.

    In the Celery pass the first server also brings two real ``dataferry worker``
    processes (one running the beat schedule) on that database, unless
    ``workers=False`` (tests that start their own)."""
    from cryptography.fernet import Fernet

    started: list[Server] = []
    groups: list[WorkerGroup] = []
    # Servers on one database must share the key that seals endpoint secrets.
    key = Fernet.generate_key().decode()

    def make(
        name: str = "a",
        env: dict[str, str] | None = None,
        db: str | None = None,
        workers: bool = True,
        log_level: str = "warning",
    ) -> Server:
        srv = Server(
            tmp_path / f"home-{name}",
            db or database_url,
            {"DATAFERRY_SECRET_KEY": key, **executor_env, **(env or {})},
            log_level=log_level,
        )
        started.append(srv)
        pending = []
        if executor_env and workers and not groups:
            # Workers start while the server does (both take seconds to import).
            group = WorkerGroup(tmp_path / "home-workers", srv.env)
            groups.append(group)
            queues = ",".join(registered_queues(tmp_path / "home-queues"))
            pending = group.launch(
                ["--queues", queues, "--concurrency", "4", "--beat"],
                ["--queues", queues, "--concurrency", "4"],
            )
        srv.start()
        for w in pending:
            w.wait_ready()
        return srv

    yield make
    for group in groups:
        group.stop()
    for srv in started:
        srv.kill()


@pytest.fixture
def server(server_factory: Any) -> Server:
    srv: Server = server_factory()
    return srv
