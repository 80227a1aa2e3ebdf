"""A dataferry collection as a sink source: puts, edits and deletes become changes;
a change wakes the sink at once."""

from __future__ import annotations

import random
import time
import uuid as uuidlib
from collections import defaultdict
from typing import Any

import pytest

from dataferry.config import Settings
from dataferry.sinks.spec import SinkSettings
from tests.support.receiver import Receiver, chaos


def sink_def(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "obs",
        "source": {"collection": "observations"},
        "url": url,
        "retry_interval": 0.02,
        "retry_cap": 0.3,
        "timeout": 0.5,
        **extra,
    }


def test_put_edit_delete_become_new_modified_deleted(core: Any, receiver: Receiver) -> None:
    a = core.records.put("observations", {"species": "Acacia", "rev": 1}).uuid
    b = core.records.put("observations", {"species": "Banksia", "rev": 1}).uuid
    core.sinks.add(sink_def(receiver.url))
    core.sinks.run_once("obs")
    assert {r.id: r.status for r in receiver.applied()} == {a: "new", b: "new"}
    doc = receiver.state[a]
    assert doc["record"] == {"species": "Acacia", "rev": 1} and doc["lastModified"]
    assert receiver.requests(a)[0].idempotency_key.startswith(f"collection:observations/{a}/")
    core.records.put("observations", {"species": "Acacia dealbata", "rev": 2}, uuid=a)
    core.records.delete("observations", b)
    core.sinks.run_once("obs")
    assert [r.status for r in receiver.applied(a)] == ["new", "modified"]
    assert [r.status for r in receiver.applied(b)] == ["new", "deleted"]
    assert set(receiver.state) == {a}
    assert receiver.state[a]["record"]["species"] == "Acacia dealbata"
    assert core.sinks.run_once("obs").delivered == 0


def test_record_deleted_before_delivery_sends_nothing(core: Any, receiver: Receiver) -> None:
    core.records.create_collection("observations")
    core.sinks.add(sink_def(receiver.url))
    a = core.records.put("observations", {"x": 1}).uuid
    core.records.delete("observations", a)
    b = core.records.put("observations", {"x": 2}).uuid
    stats = core.sinks.run_once("obs")
    assert stats.dropped == 1
    assert [r.id for r in receiver.requests()] == [b]


def test_a_change_wakes_the_sink_at_once(settings: Settings, receiver: Receiver) -> None:
    from dataferry.app import build

    core = build(settings.model_copy(update={"sink": SinkSettings(tick_seconds=30)}))
    try:
        core.records.create_collection("observations")
        core.sinks.add(sink_def(receiver.url, poll_interval=3600))
        core.start()
        time.sleep(0.5)  # the first poll (at start) found nothing
        a = core.records.put("observations", {"x": 1}).uuid
        deadline = time.monotonic() + 20
        # Neither the poll interval (1 h) nor the loop's tick (30 s) can have passed:
        # only the wake-up from the collection can deliver it.
        while a not in receiver.state:
            assert time.monotonic() < deadline, "the change did not wake the sink"
            time.sleep(0.05)
    finally:
        core.stop()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ten_thousand_changes_from_a_collection_all_arrive_in_order(settings: Settings) -> None:
    from dataferry.app import build

    receiver = Receiver(choose=chaos(seed=21, failure_rate=0.15), timeout_sleep=0.8).start()
    fast = settings.model_copy(update={"sink": SinkSettings(lease_seconds=2, tick_seconds=0.05)})
    core = build(fast)
    rng = random.Random(4)
    live: dict[str, int] = {}
    changes = 0
    try:
        core.records.create_collection("observations")
        core.sinks.add(sink_def(receiver.url, concurrency=8))
        core.start()
        # Creates in batches, then edits, deletes and immediate re-edits while sending.
        for _ in range(30):
            batch = [(str(uuidlib.uuid4()), {"rev": 1, "note": "created"}) for _ in range(100)]
            core.records.put_many("observations", batch)
            live.update((u, 1) for u, _ in batch)
            changes += len(batch)
        while changes < 10_000:
            r = rng.random()
            if r < 0.1:
                u = rng.choice(list(live))
                del live[u]
                core.records.delete("observations", u)
                changes += 1
                continue
            edits = []
            for u in rng.sample(list(live), 20):
                live[u] += 1
                edits.append((u, {"rev": live[u], "note": f"edit {changes}"}))
            core.records.put_many("observations", edits)
            changes += len(edits)
            if r < 0.4:  # re-edit at once: the first edit may be in flight
                for i, (u, _) in enumerate(edits):
                    live[u] += 1
                    edits[i] = (u, {"rev": live[u], "note": f"re-edit {changes}"})
                core.records.put_many("observations", edits)
                changes += len(edits)
        deadline = time.monotonic() + 600
        while True:
            counts = core.sinks.get("obs")["changes"]
            state_ok = set(receiver.state) == set(live) and all(
                receiver.state[u]["record"]["rev"] == rev for u, rev in live.items()
            )
            if counts["pending"] == 0 and state_ok:
                break
            assert time.monotonic() < deadline, f"not delivered: {counts}"
            time.sleep(0.3)
        assert counts["dead"] == 0
    finally:
        core.stop()
        receiver.stop()
    seen: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for got in receiver.applied():
        seen[got.id].append((got.status, got.document["record"].get("rev", -1)))
    for u, history in seen.items():
        alive = [rev for status, rev in history if status != "deleted"]
        assert alive == sorted(alive), (u, history)
        statuses = [s for s, _ in history]
        if "deleted" in statuses:
            assert set(statuses[statuses.index("deleted") :]) == {"deleted"}, (u, history)
    keys: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for got in receiver.requests():
        keys[(got.id, got.status, got.document["lastModified"])].add(got.idempotency_key)
    assert all(len(k) == 1 for k in keys.values())
    assert len(receiver.requests()) > len(receiver.applied())


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kill_9_mid_run_then_restart_loses_nothing(server_factory: Any, core: Any) -> None:
    """Another process writes the collection; the server delivering it is killed."""
    receiver = Receiver(choose=chaos(seed=8, failure_rate=0.2), timeout_sleep=0.8).start()
    env = {"DATAFERRY_SINK__LEASE_SECONDS": "2", "DATAFERRY_SINK__TICK_SECONDS": "0.05"}
    rng = random.Random(2)
    live: dict[str, int] = {}

    def write(n: int) -> None:
        batch: dict[str, dict[str, int]] = {}
        for _ in range(n):
            if live and rng.random() < 0.5:
                u = rng.choice(list(live))
                if u not in batch and rng.random() < 0.1:
                    del live[u]
                    core.records.delete("observations", u)
                    continue
                live[u] += 1
            else:
                u = str(uuidlib.uuid4())
                live[u] = 1
            batch[u] = {"rev": live[u]}
        core.records.put_many("observations", list(batch.items()))

    try:
        core.records.create_collection("observations")
        write(1000)
        srv = server_factory("a", env)
        with srv.client() as c:
            c.add_sink(sink_def(receiver.url, poll_interval=0.3, concurrency=4))
        deadline = time.monotonic() + 120
        while len(receiver.applied()) < 300:
            assert time.monotonic() < deadline, "nothing delivered"
            time.sleep(0.05)
        srv.kill()  # SIGKILL: sends in flight, outbox not updated
        write(500)
        srv.start()
        deadline = time.monotonic() + 400
        while not (
            set(receiver.state) == set(live)
            and all(receiver.state[u]["record"]["rev"] == rev for u, rev in live.items())
        ):
            assert time.monotonic() < deadline, "not everything arrived after the restart"
            time.sleep(0.3)
    finally:
        receiver.stop()
    keys: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for got in receiver.requests():
        keys[(got.id, got.status, got.document["lastModified"])].add(got.idempotency_key)
    assert all(len(k) == 1 for k in keys.values())
    for u in live:
        revs = [g.document["record"]["rev"] for g in receiver.applied(u) if g.status != "deleted"]
        assert revs == sorted(revs), (u, revs)
