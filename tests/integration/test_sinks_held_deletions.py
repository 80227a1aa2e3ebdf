"""Deleted rows a sink has its outcome for while they wait for another sink reading
the same table: what polls count, what the sink's document shows, and what a change
of definition settles at once. On SQLite and PostgreSQL tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.browser import Browser
from tests.support.receiver import Receiver
from tests.support.tables import AppTable, make_table, table_sink, table_source
from tests.support.waiting import wait_for

FAST = {"DATAFERRY_SINK__LEASE_SECONDS": "2", "DATAFERRY_SINK__TICK_SECONDS": "0.05"}


@pytest.fixture(params=["sqlite", "postgresql"])
def table(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppTable]:
    yield from make_table(request.param, tmp_path)


@pytest.fixture
def partners() -> Iterator[tuple[Receiver, Receiver]]:
    """Two partners' services, one per sink."""
    first, second = Receiver().start(), Receiver().start()
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


def add_two_sinks(core: Any, table: AppTable, partners: tuple[Receiver, Receiver]) -> None:
    """Sinks ``a`` (column last_sync) and ``b`` (column b_sync) on ``table``."""
    table.add_column("b_sync")
    first, second = partners
    core.sinks.add(table_sink(table, first.url, name="a"))
    core.sinks.add(table_sink(table, second.url, name="b", table_extra={"last_sync": "b_sync"}))


def test_polled_does_not_count_deleted_rows_only_waiting_for_another_sink(
    core: Any, table: AppTable, partners: tuple[Receiver, Receiver]
) -> None:
    """b is paused, so rows 1 (delivered by a, then deleted) and 2 (deleted before a
    sent it: dropped) wait for b. Every poll of a reads them again; before, each poll
    counted both as polled, so ``polled`` grew with nothing new. Now a poll counts only
    the changes it takes up into the outbox: the two deletions once, then nothing."""
    first, _ = partners
    add_two_sinks(core, table, partners)
    table.insert(1)
    assert core.sinks.run_once("a").polled == 1
    core.sinks.pause("b")
    table.delete(1)
    table.insert(2)
    table.delete(2)
    stats = core.sinks.run_once("a")
    assert (stats.polled, stats.delivered, stats.dropped) == (1, 1, 1)
    assert set(table.rows()) == {1, 2}  # held for b
    engine, store = core.sinks.engine, core.sinks.store
    for _ in range(3):
        stats = core.sinks.run_once("a")
        assert (stats.polled, stats.delivered, stats.dropped) == (0, 0, 0)
        assert engine.poll(engine.sink(store.get("a"))) == 0
    # A real change of a waiting row is taken up (and counted) again.
    table.edit(1, deleted=None, comment="back")
    stats = core.sinks.run_once("a")
    assert (stats.polled, stats.delivered) == (1, 1)
    assert [r.status for r in first.requests("1")] == ["new", "deleted", "modified"]


def test_sink_show_counts_dropped_deletions_and_those_waiting_for_other_sinks(
    server_factory: Any, table: AppTable, partners: tuple[Receiver, Receiver]
) -> None:
    """Through a real server: a delivers row 1's deletion and drops row 2's (deleted
    before anyone sent it) while b is paused, so both rows wait for b. Before, the
    sink's document (REST, ``sink show``, the dashboard) counted neither the drop nor what waits
    for other sinks; now ``changes`` has ``dropped`` and ``waiting_for_other_sinks``.
    Once b has its outcomes, the rows go and the counts are 0 again."""
    first, second = partners
    srv = server_factory("a", FAST)
    table.add_column("b_sync")
    table.insert(1)
    a = table_sink(table, first.url, name="a")
    b = table_sink(table, second.url, name="b", table_extra={"last_sync": "b_sync"})
    with httpx.Client(base_url=srv.url) as http:
        for sink in (a, b):
            assert http.post("/api/v1/sinks", json=sink).status_code == 201

        def synced() -> bool:
            row = table.row(1)
            return row is not None and row["last_sync"] == row["b_sync"] == row["modified"]

        wait_for(synced, every=0.1)
        assert http.post("/api/v1/sinks/b/pause").status_code == 200
        table.delete(1)
        table.insert(2, deleted=table.now())
        http.post("/api/v1/sinks/a/poll")

        def changes(name: str) -> dict[str, int]:
            doc: dict[str, int] = http.get(f"/api/v1/sinks/{name}").json()["changes"]
            return doc

        settled = {
            "pending": 0,
            "retrying": 0,
            "in_flight": 0,
            "delivered": 1,  # row 1's deletion, kept until b has its outcome
            "dead": 0,
            "dropped": 1,
            "waiting_for_other_sinks": 2,
        }
        # Waits for every count, not only the one that settles last: this assertion
        # failed once on a loaded machine (cause not captured; not reproduced in 5 runs).
        wait_for(lambda: changes("a") == settled, every=0.1)
        assert set(table.rows()) == {1, 2}
        assert changes("b")["dropped"] == changes("b")["waiting_for_other_sinks"] == 0
        listed = {d["name"]: d["changes"] for d in http.get("/api/v1/sinks").json()["sinks"]}
        assert listed["a"] == changes("a")
        assert 'dataferry_sink_changes{sink="a",state="dropped"} 1.0' in http.get("/metrics").text

        # The CLI shows the same counts, as JSON and as text.
        assert srv.cli_json("sink", "show", "a")["changes"] == changes("a")
        shown = srv.cli("sink", "show", "a", env_columns=200).stdout
        assert "1 delivered, 0 dead, 1 dropped\n" in shown
        assert "deletions waiting for other sinks: 2\n" in shown

        # So does the dashboard, on the sink's page and the list of sinks.
        with Browser(srv.url) as web:
            page = web.get("/sinks/a").text
            assert '<dd data-field="dropped">1</dd>' in page
            assert '<dd data-field="waiting">2</dd>' in page
            listing = web.get("/sinks").text
            assert '<td data-field="dropped">1</td>' in listing
            assert '<td data-field="waiting">2</td>' in listing

        # b delivers row 1's deletion and drops row 2's: both rows go, nothing waits.
        assert http.post("/api/v1/sinks/b/resume").status_code == 200
        http.post("/api/v1/sinks/b/poll")
        wait_for(lambda: table.rows() == {}, every=0.1, timeout=15)
        for name in ("a", "b"):
            after = changes(name)
            assert after["dropped"] == after["waiting_for_other_sinks"] == 0, (name, after)
        shown = srv.cli("sink", "show", "b", env_columns=200).stdout
        assert "0 dead, 0 dropped\n" in shown and "waiting for other sinks: 0\n" in shown
    assert [r.status for r in second.requests("1")] == ["new", "deleted"]
    assert first.requests("2") == second.requests("2") == []


def test_a_change_of_row_filter_or_a_removal_removes_rows_no_sink_holds_at_once(
    core: Any, table: AppTable, partners: tuple[Receiver, Receiver]
) -> None:
    """a delivered the deletions of rows 1 and 2; paused b holds both. b's ``where``
    changed so that it no longer selects row 1: before, row 1 stayed until the next
    poll of a or b; now the change removes it at once (no poll runs here: the core's
    daemon is not started). Removing b likewise removes row 2 at once."""
    first, second = partners
    add_two_sinks(core, table, partners)
    table.insert(1)
    table.insert(2)
    core.sinks.run_once("a")
    core.sinks.run_once("b")
    core.sinks.pause("b")
    table.delete(1)
    table.delete(2)
    assert core.sinks.run_once("a").delivered == 2
    assert set(table.rows()) == {1, 2}
    assert core.sinks.get("a")["changes"]["waiting_for_other_sinks"] == 2

    core.sinks.update("b", {"source": {"table": {"where": "id <> 1"}}})
    assert set(table.rows()) == {2}
    assert core.sinks.get("a")["changes"]["waiting_for_other_sinks"] == 1

    # A change that leaves the source as it is changes nothing of what b holds.
    core.sinks.update("b", {"timeout": 5})
    assert set(table.rows()) == {2}

    core.sinks.remove("b")
    assert table.rows() == {}
    assert core.sinks.get("a")["changes"]["waiting_for_other_sinks"] == 0
    assert [r.status for r in first.requests("1")] == ["new", "deleted"]
    assert [r.status for r in second.requests("1")] == ["new"]


def test_a_sink_moved_to_another_table_releases_the_old_tables_rows_at_once(
    core: Any, table: AppTable, partners: tuple[Receiver, Receiver], tmp_path: Path
) -> None:
    """Paused b holds row 1, whose deletion a delivered. b given another table as its
    source holds nothing of the old one: the change removes row 1 at once, not at
    a's next poll. b's new table has a deleted row of its own, held by nobody else:
    it stays until b has its outcome."""
    add_two_sinks(core, table, partners)
    table.insert(1)
    core.sinks.run_once("a")
    core.sinks.run_once("b")
    core.sinks.pause("b")
    table.delete(1)
    assert core.sinks.run_once("a").delivered == 1
    assert table.row(1) is not None
    other_gen = make_table("sqlite" if table.sqlite else "postgresql", tmp_path)
    other = next(other_gen)
    try:
        other.insert(5, deleted=other.now())
        core.sinks.update("b", {"source": table_source(other)})
        assert table.rows() == {}
        assert set(other.rows()) == {5}
        core.sinks.resume("b")
        assert core.sinks.run_once("b").dropped == 1
        assert other.rows() == {}
    finally:
        other_gen.close()


def test_a_config_file_change_or_removal_of_a_sink_removes_rows_it_no_longer_holds(
    core: Any, table: AppTable, partners: tuple[Receiver, Receiver]
) -> None:
    """The same through the config file (applied when ``serve`` starts): b, defined
    there, narrowed by a ``where`` and then left out of the file, releases row 1, then
    row 2, as the file is applied, without a poll."""
    from dataferry.sinks.spec import SinkSpec

    first, second = partners
    table.add_column("b_sync")
    core.sinks.add(table_sink(table, first.url, name="a"))

    def b(**table_extra: str) -> SinkSpec:
        extra = {"last_sync": "b_sync", **table_extra}
        return SinkSpec.model_validate(
            table_sink(table, second.url, name="b", paused=True, table_extra=extra)
        )

    core.sinks.sync_config([b()])
    table.insert(1)
    table.insert(2)
    core.sinks.run_once("a")
    table.delete(1)
    table.delete(2)
    assert core.sinks.run_once("a").delivered == 2
    assert set(table.rows()) == {1, 2}  # b (paused) holds both: it never sent them

    core.sinks.sync_config([b(where="id <> 1")])
    assert set(table.rows()) == {2}
    core.sinks.sync_config([])
    assert table.rows() == {}
    assert [d["name"] for d in core.sinks.list()] == ["a"]
    assert second.requests() == []
