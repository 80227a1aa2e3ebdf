"""The table-source rules, one test each, on SQLite and PostgreSQL tables; the
engine runs step by step (``run_once``) against a real receiver on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.receiver import ACCEPT, Receiver
from tests.support.tables import AppTable, make_table, table_sink


@pytest.fixture(params=["sqlite", "postgresql"])
def table(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppTable]:
    yield from make_table(request.param, tmp_path)


def test_new_row_is_sent_as_new_and_last_sync_set(
    core: Any, table: AppTable, receiver: Receiver
) -> None:
    table.insert(1, species="Acacia dealbata", comment="looks right")
    core.sinks.add(table_sink(table, receiver.url))
    stats = core.sinks.run_once("vet")
    assert stats.delivered == 1
    [got] = receiver.applied()
    assert got.status == "new"
    doc = got.document
    assert doc["id"] == "1" and doc["record"]["species"] == "Acacia dealbata"
    assert set(doc) == {"id", "status", "lastModified", "record"}
    assert got.idempotency_key.startswith(f"table:{table.name}/1/")
    assert receiver.headers[0]["content-type"] == "application/json"
    row = table.row(1)
    assert row is not None and row["last_sync"] == row["modified"]
    # Nothing more to send.
    assert core.sinks.run_once("vet").delivered == 0
    assert len(receiver.requests()) == 1


def test_modified_row_is_sent_as_modified(core: Any, table: AppTable, receiver: Receiver) -> None:
    table.insert(1)
    core.sinks.add(table_sink(table, receiver.url))
    core.sinks.run_once("vet")
    table.edit(1, comment="second look")
    row = table.row(1)
    assert row is not None and row["last_sync"] < row["modified"]
    assert core.sinks.run_once("vet").delivered == 1
    first, second = receiver.applied()
    assert (first.status, second.status) == ("new", "modified")
    assert second.document["record"]["comment"] == "second look"
    assert first.idempotency_key != second.idempotency_key
    row = table.row(1)
    assert row is not None and row["last_sync"] == row["modified"]


def test_synced_row_is_not_sent(core: Any, table: AppTable, receiver: Receiver) -> None:
    t = table.now()
    table.insert(1, modified=t, last_sync=t)
    table.insert(2, modified=t, last_sync=table.now())  # synced after its change
    core.sinks.add(table_sink(table, receiver.url))
    assert core.sinks.run_once("vet").delivered == 0
    assert receiver.requests() == []


def test_deleted_row_is_sent_then_removed(core: Any, table: AppTable, receiver: Receiver) -> None:
    table.insert(1)
    table.insert(2)
    core.sinks.add(table_sink(table, receiver.url))
    core.sinks.run_once("vet")
    table.delete(1)
    assert core.sinks.run_once("vet").delivered == 1
    last = receiver.applied()[-1]
    assert (last.id, last.status) == ("1", "deleted")
    assert set(table.rows()) == {2}
    assert set(receiver.state) == {"2"}


def test_row_deleted_before_delivery_is_removed_without_request(
    core: Any, table: AppTable, receiver: Receiver
) -> None:
    table.insert(1)
    table.delete(1)
    table.insert(2)
    core.sinks.add(table_sink(table, receiver.url))
    stats = core.sinks.run_once("vet")
    assert stats.dropped == 1 and stats.delivered == 1
    assert [r.id for r in receiver.requests()] == ["2"]
    assert set(table.rows()) == {2}


def test_last_sync_is_the_sent_change_time_so_an_edit_in_flight_is_sent_again(
    core: Any, table: AppTable, receiver: Receiver
) -> None:
    table.insert(1, comment="first")
    edited: list[str] = []

    def edit_while_in_flight(doc: dict[str, Any]) -> None:
        if not edited:  # the application edits the row while the request is in flight
            edited.append(doc["lastModified"])
            table.edit(1, comment="edited meanwhile")

    receiver.on_apply = edit_while_in_flight
    core.sinks.add(table_sink(table, receiver.url))
    core.sinks.run_once("vet")
    row = table.row(1)
    assert row is not None
    assert str(row["last_sync"]).replace("T", " ").startswith(edited[0].replace("T", " ")[:19])
    assert row["last_sync"] < row["modified"]  # not "now": the edit is still to send
    core.sinks.run_once("vet")
    assert [r.document["record"]["comment"] for r in receiver.applied()] == [
        "first",
        "edited meanwhile",
    ]
    row = table.row(1)
    assert row is not None and row["last_sync"] == row["modified"]


def test_row_filter_selects_rows(core: Any, table: AppTable, receiver: Receiver) -> None:
    table.insert(1, email="expert@ala.org.au")
    table.insert(2, email=None)
    core.sinks.add(table_sink(table, receiver.url, table_extra={"where": "user_email IS NOT NULL"}))
    core.sinks.run_once("vet")
    assert [r.id for r in receiver.requests()] == ["1"]
    row2 = table.row(2)
    assert row2 is not None and row2["last_sync"] is None


def test_changes_to_one_row_are_coalesced(core: Any, table: AppTable, receiver: Receiver) -> None:
    table.insert(1, comment="a")
    table.edit(1, comment="b")
    table.edit(1, comment="c")
    core.sinks.add(table_sink(table, receiver.url))
    core.sinks.run_once("vet")
    [got] = receiver.applied()
    assert got.document["record"]["comment"] == "c" and got.document["record"]["rev"] == 3


def test_failed_delivery_leaves_the_row_unsynced_and_is_retried(
    core: Any, table: AppTable, receiver: Receiver
) -> None:
    table.insert(1)
    table.insert(2)
    fails = {"1": 2}

    def choose(doc: dict[str, Any]) -> str:
        if fails.get(doc["id"], 0) > 0:
            fails[doc["id"]] -= 1
            return "500"
        return ACCEPT

    receiver.choose = choose
    core.sinks.add(table_sink(table, receiver.url, retry_interval=0.2, retry_cap=0.3))
    stats = core.sinks.run_once("vet")
    assert stats.delivered == 1 and stats.failed == 1
    row = table.row(1)
    assert row is not None and row["last_sync"] is None
    for _ in range(50):
        time.sleep(0.1)
        core.sinks.run_once("vet")
        row = table.row(1)
        assert row is not None
        if row["last_sync"] is not None:
            break
    assert row["last_sync"] == row["modified"]
    assert [r.applied for r in receiver.requests("1")] == [False, False, True]
