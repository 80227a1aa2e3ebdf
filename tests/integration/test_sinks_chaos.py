"""10,000 changes through a receiver that fails at random; a crash mid-run.

The receiver applies a document when it receives it (before any slow or lost
answer), as a real partner does; it keeps every request it saw, so the test can
check order, completeness and idempotency keys."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dataferry.config import Settings
from dataferry.sinks.spec import SinkSettings
from tests.support.receiver import Receiver, chaos
from tests.support.tables import AppTable, make_table, table_sink


@pytest.fixture
def table(tmp_path: Path) -> Iterator[AppTable]:
    # The application's table is SQLite; the sink's own database is the suite's
    # (SQLite, or PostgreSQL with DATAFERRY_TEST_POSTGRES_URL). The table rules run
    # on both kinds of table in test_sinks_table.py.
    yield from make_table("sqlite", tmp_path)


def sink_def(table: AppTable, url: str, **extra: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "poll_interval": 1.0,
        "retry_interval": 0.02,
        "retry_cap": 0.3,
        "timeout": 0.5,
        "concurrency": 8,
    }
    return table_sink(table, url, **{**defaults, **extra})


class Writer:
    """Creates, edits, deletes and re-edits rows like a busy application."""

    def __init__(self, table: AppTable, seed: int, first_id: int) -> None:
        self.table = table
        self.rng = random.Random(seed)
        self.live: list[int] = []
        self.next_id = first_id
        self.changes = 0

    def create(self, n: int) -> None:
        for _ in range(n):
            self.table.insert(self.next_id, comment="created")
            self.live.append(self.next_id)
            self.next_id += 1
            self.changes += 1

    def step(self) -> None:
        r = self.rng.random()
        if r < 0.2 or not self.live:
            self.create(1)
        elif r < 0.35:
            rid = self.live.pop(self.rng.randrange(len(self.live)))
            self.table.delete(rid)
            self.changes += 1
        elif r < 0.5:  # re-edit at once: the first edit may be in flight
            rid = self.rng.choice(self.live)
            self.table.edit(rid, comment=f"edit {self.changes}")
            self.table.edit(rid, comment=f"re-edit {self.changes}")
            self.changes += 2
        else:
            rid = self.rng.choice(self.live)
            self.table.edit(rid, comment=f"edit {self.changes}")
            self.changes += 1


def synced(table: AppTable) -> bool:
    rows = table.rows()
    return all(r["deleted"] is None and r["last_sync"] == r["modified"] for r in rows.values())


def wait_synced(table: AppTable, timeout: float, check: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if synced(table) and (check is None or check()):
            return
        time.sleep(0.3)
    bad = [
        r
        for r in table.rows().values()
        if r["deleted"] is not None or r["last_sync"] != r["modified"]
    ]
    raise AssertionError(f"{len(bad)} rows still not delivered after {timeout}s: {bad[:3]}")


def assert_receiver_matches(receiver: Receiver, table: AppTable) -> None:
    rows = table.rows()
    assert set(receiver.state) == {str(i) for i in rows}
    for rid, row in rows.items():
        record = receiver.state[str(rid)]["record"]
        assert (record["rev"], record["comment"]) == (row["rev"], row["comment"]), rid
    # Per record, the partner saw its changes in order (rev never goes back, nothing
    # after a deletion) ...
    seen: dict[str, list[Any]] = defaultdict(list)
    for r in receiver.applied():
        seen[r.id].append((r.status, r.document["record"]["rev"]))
    for record_id, history in seen.items():
        revs = [rev for _, rev in history]
        assert revs == sorted(revs), (record_id, history)
        statuses = [s for s, _ in history]
        if "deleted" in statuses:
            assert set(statuses[statuses.index("deleted") :]) == {"deleted"}, (record_id, history)
    # ... and every copy of one change carried the same idempotency key.
    keys: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for r in receiver.requests():
        keys[(r.id, r.status, r.document["lastModified"])].add(r.idempotency_key)
    assert all(len(k) == 1 for k in keys.values())


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ten_thousand_changes_from_a_table_all_arrive_in_order(
    settings: Settings, table: AppTable
) -> None:
    from dataferry.app import build

    receiver = Receiver(choose=chaos(seed=11, failure_rate=0.15), timeout_sleep=0.8).start()
    fast = settings.model_copy(update={"sink": SinkSettings(lease_seconds=2, tick_seconds=0.05)})
    core = build(fast)
    writer = Writer(table, seed=5, first_id=1)
    writer.create(3000)
    try:
        core.sinks.add(sink_def(table, receiver.url))
        core.start()
        while writer.changes < 10_000:
            writer.step()
        wait_synced(table, 600)
        doc = core.sinks.get("vet")
        assert doc["changes"]["pending"] == 0 and doc["changes"]["dead"] == 0
    finally:
        core.stop()
        receiver.stop()
    assert writer.changes >= 10_000
    assert_receiver_matches(receiver, table)
    # The receiver really did fail in every way along the way.
    assert len(receiver.requests()) > len(receiver.applied()) > 3000


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kill_9_mid_run_then_restart_loses_nothing(server_factory: Any, tmp_path: Path) -> None:
    gen = make_table("sqlite", tmp_path)
    table = next(gen)
    receiver = Receiver(choose=chaos(seed=3, failure_rate=0.2), timeout_sleep=0.8).start()
    env = {"DATAFERRY_SINK__LEASE_SECONDS": "2", "DATAFERRY_SINK__TICK_SECONDS": "0.05"}
    try:
        writer = Writer(table, seed=9, first_id=1)
        writer.create(1500)
        srv = server_factory("a", env)
        with srv.client() as c:
            c.add_sink(sink_def(table, receiver.url, concurrency=4))
        deadline = time.monotonic() + 120
        while len(receiver.applied()) < 300:
            assert time.monotonic() < deadline, "nothing delivered"
            writer.step()
            time.sleep(0.005)
        srv.kill()  # SIGKILL: sends in flight, marks not written
        assert not synced(table)
        for _ in range(300):
            writer.step()
        srv.start()
        wait_synced(table, 240)
        with httpx.Client(base_url=srv.url) as http:
            metrics = http.get("/metrics").text
        assert 'dataferry_sink_changes{sink="vet",state="dead"} 0.0' in metrics
        assert_receiver_matches(receiver, table)
    finally:
        receiver.stop()
        gen.close()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_concurrent_deliveries_share_the_work_without_losing_order(
    settings: Settings, tmp_path: Path
) -> None:
    """Two processes' worth of engines on one database deliver one sink together."""
    from dataferry.app import build

    gen = make_table("sqlite", tmp_path)
    table = next(gen)
    receiver = Receiver(choose=chaos(seed=7, failure_rate=0.2), timeout_sleep=0.8).start()
    fast = settings.model_copy(update={"sink": SinkSettings(lease_seconds=2, tick_seconds=0.05)})
    a = build(fast)
    b = build(fast.model_copy(update={"node_name": "other"}))
    writer = Writer(table, seed=1, first_id=1)
    writer.create(500)
    try:
        a.sinks.add(sink_def(table, receiver.url, concurrency=4))
        a.start()
        b.start()
        stop = threading.Event()

        def write() -> None:
            while not stop.is_set() and writer.changes < 2000:
                writer.step()

        t = threading.Thread(target=write)
        t.start()
        t.join(120)
        stop.set()
        wait_synced(table, 240)
        assert_receiver_matches(receiver, table)
    finally:
        a.stop()
        b.stop()
        receiver.stop()
        gen.close()
