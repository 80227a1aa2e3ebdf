"""Which last_sync column a table sink sets, however its URL and table are written."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataferry.sinks.sharing import column, shadowed, table_of

PG = "postgresql+psycopg://u@127.0.0.1:5432/app"


@pytest.mark.parametrize(
    ("url", "table", "last_sync"),
    [
        (PG, "vettings", "last_sync"),
        ("postgresql://other:secret@LOCALHOST/app", "public.vettings", "LAST_SYNC"),
        ("postgresql+psycopg://u@[::1]:5432/app?connect_timeout=5", "Vettings", "last_sync"),
    ],
)
def test_one_column_written_differently(url: str, table: str, last_sync: str) -> None:
    assert column(url, table, last_sync) == column(PG, "vettings", "last_sync")


@pytest.mark.parametrize(
    ("url", "table", "last_sync"),
    [
        ("postgresql+psycopg://u@127.0.0.1:5433/app", "vettings", "last_sync"),
        ("postgresql+psycopg://u@127.0.0.1/other", "vettings", "last_sync"),
        ("postgresql+psycopg://u@db.example.org/app", "vettings", "last_sync"),
        (PG, "audit.vettings", "last_sync"),
        (PG, "vettings", "synced"),
    ],
)
def test_other_columns(url: str, table: str, last_sync: str) -> None:
    assert column(url, table, last_sync) != column(PG, "vettings", "last_sync")


def test_sqlite_files_by_real_path_and_private_memory_databases(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path)
    a = column(f"sqlite:///{tmp_path}/app.db", "t", "s")
    assert a is not None
    assert column(f"sqlite+pysqlite:///{tmp_path}/link/./app.db?timeout=5", "main.t", "s") == a
    assert column(f"sqlite:///{tmp_path}/other.db", "t", "s") != a
    for memory in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"):
        assert column(memory, "t", "s") is None, memory
    assert column("not a url", "t", "s") is None


def test_mysql_schema_is_the_database() -> None:
    here = column("mysql+pymysql://u@h/app", "vettings", "s")
    assert here == column("mysql+pymysql://u@h:3306/other", "app.vettings", "s")


def test_only_the_oldest_of_sinks_on_one_column_is_not_shadowed() -> None:
    one = column(PG, "vettings", "last_sync")
    other = column(PG, "vettings", "b_sync")
    entries = [(7, "late", one), (3, "first", one), (5, "own", other), (9, "coll", None)]
    assert shadowed(entries) == {7: "first"}


def test_unusable_urls_are_no_column() -> None:
    """A NUL (%00) or a lone surrogate in a SQLite path raised ValueError: a 500 when
    such a sink was added. The source check refuses them, with a message."""
    for url in ("sqlite:///a%00b", "sqlite:///\ud800", "sqlite:///file:%00?uri=true"):
        assert column(url, "t", "s") is None, url


def test_sinks_setting_their_own_columns_of_one_table_read_one_table() -> None:
    """They hold that table's deleted rows together (sinks.sweep)."""
    mine = table_of(column(PG, "vettings", "last_sync"))
    assert mine is not None
    assert table_of(column("postgresql://x@localhost/app", "public.Vettings", "b_sync")) == mine
    assert table_of(column(PG, "audit.vettings", "last_sync")) != mine
    assert table_of(column("sqlite:///:memory:", "vettings", "last_sync")) is None
