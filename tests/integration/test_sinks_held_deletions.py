"""Deleted rows a sink has its outcome for while they wait for another sink reading
the same table: what polls count, what the sink's document shows, and what a change
of definition settles at once. On SQLite and PostgreSQL tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.receiver import Receiver
from tests.support.tables import AppTable, make_table, table_sink


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
