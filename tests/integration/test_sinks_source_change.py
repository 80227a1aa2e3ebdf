"""Changing a sink's source (``sink set``, PATCH) through a real ``dataferry serve``,
on SQLite and PostgreSQL tables."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.support.receiver import Receiver
from tests.support.tables import AppTable, make_table, table_sink
from tests.support.waiting import wait_for

FAST = {"DATAFERRY_SINK__LEASE_SECONDS": "2", "DATAFERRY_SINK__TICK_SECONDS": "0.05"}


@pytest.fixture(params=["sqlite", "postgresql"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def table(kind: str, tmp_path: Path) -> Iterator[AppTable]:
    yield from make_table(kind, tmp_path)


@pytest.fixture
def other(kind: str, tmp_path: Path) -> Iterator[AppTable]:
    yield from make_table(kind, tmp_path)


def synced(table: AppTable, rid: int, column: str = "last_sync") -> bool:
    row = table.row(rid)
    return row is not None and row[column] == row["modified"]


def test_a_sink_moved_to_another_table_sends_its_rows_and_marks_them(
    server_factory: Any, table: AppTable, other: AppTable, receiver: Receiver
) -> None:
    """``sink set`` had no source options, and a PATCH of the source kept the outbox of
    the old one: a row of the new table whose key and ``modified`` equalled a row the
    old table had delivered counted as delivered already, so it was never sent nor
    marked. Now ``sink set --table/--table-url/--last-sync/...`` changes the source
    (the options given are merged into the current table source), with the same checks
    as ``add``; moved to another table, column or collection the sink forgets what it
    delivered of the old one and sends the new source from its beginning. Reaching the
    same column by another URL (a new password, say) keeps it: nothing is sent again."""
    srv = server_factory("a", FAST)
    table.insert(1, species="Acacia")
    with httpx.Client(base_url=srv.url) as http:
        assert http.post("/api/v1/sinks", json=table_sink(table, receiver.url)).status_code == 201
        wait_for(lambda: synced(table, 1), every=0.1)

        other.insert(1, species="Banksia")
        other.insert(2, species="Callistemon")
        assert other.row(1)["modified"] == table.row(1)["modified"]  # type: ignore[index]
        moved = srv.cli("sink", "set", "vet", "--table", other.name, "--table-url", other.url)
        assert "updated" in moved.stdout, moved
        wait_for(lambda: synced(other, 1) and synced(other, 2), every=0.1)
        assert [r.document["record"]["species"] for r in receiver.applied("1")] == [
            "Acacia",
            "Banksia",
        ]

        # Another column of the same table: the given option merged, every row sent again.
        other.add_column("b_sync")
        srv.cli("sink", "set", "vet", "--last-sync", "b_sync")
        doc = http.get("/api/v1/sinks/vet").json()
        assert doc["source"]["table"]["name"] == other.name
        assert doc["source"]["table"]["last_sync"] == "b_sync"
        wait_for(lambda: synced(other, 1, "b_sync") and synced(other, 2, "b_sync"), every=0.1)
        assert len(receiver.applied("1")) == 3 and len(receiver.applied("2")) == 2

        # The same column reached by another URL: nothing is sent again.
        url = sa.make_url(other.url)
        if other.sqlite:
            same = f"sqlite+pysqlite:///{url.database}?timeout=5"
        else:
            same = url.update_query_dict({"connect_timeout": "5"}).render_as_string(
                hide_password=False
            )
        srv.cli("sink", "set", "vet", "--table-url", same)
        http.post("/api/v1/sinks/vet/poll")
        time.sleep(0.5)
        assert len(receiver.applied()) == 5
        assert http.get("/api/v1/sinks/vet").json()["changes"]["delivered"] == 2

        # Bad input changes nothing.
        bad = srv.cli("sink", "set", "vet", "--table", "no_such_table", check=False)
        assert bad.returncode == 1 and "does not exist" in bad.stderr, bad
        both = srv.cli("sink", "set", "vet", "--collection", "c", "--table", "t", check=False)
        assert both.returncode == 1 and "exactly one source" in both.stderr, both
        assert http.get("/api/v1/sinks/vet").json()["source"]["table"]["name"] == other.name
