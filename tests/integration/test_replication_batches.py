"""A pull of many batches: batches already waiting are applied together in one
transaction, and the checkpoint never runs ahead of the data (a cut mid-pull
keeps what was applied; the next sync resumes from there and completes)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from dataferry.app import build
from dataferry.config import Settings
from dataferry.errors import TransientError
from dataferry.records import replication
from tests.support.databases import PostgresDatabases
from tests.support.replication import LocalTransport, cut, own_database

COLLECTION = "obs"
RECORDS = 120
BATCH = 7  # records per pulled batch: RECORDS / BATCH = 18 batches


@pytest.fixture
def pair(tmp_path: Path, postgres: PostgresDatabases | None) -> Iterator[tuple[Any, Any]]:
    cores = []
    for name in ("a", "b"):
        s = Settings(
            home=tmp_path / name,
            database_url=own_database(tmp_path, postgres, name),
            records={"batch_records": BATCH},
        )
        cores.append(build(s))
    a, b = cores
    a.records.put_many(
        COLLECTION, [(None, {"i": i, "text": f"record {i}"}) for i in range(RECORDS)]
    )
    try:
        yield a, b
    finally:
        for c in cores:
            c.stop()


def rows(core: Any) -> dict[str, tuple[int, dict[str, Any]]]:
    records, _ = core.records.list(COLLECTION, include_deleted=True, limit=1000)
    return {r.uuid: (r.hlc, r.data) for r in records}


def test_waiting_batches_are_applied_in_one_transaction(pair: tuple[Any, Any]) -> None:
    a, b = pair
    pulls: list[int] = []
    applies: list[tuple[int, int]] = []
    transport = LocalTransport(a.replication_protocol)
    plain_pull, plain_apply = transport.pull, b.records.apply
    queued = threading.Event()

    def pull(*args: Any) -> dict[str, Any]:
        batch = plain_pull(*args)
        pulls.append(int(batch["cursor"]))
        if len(pulls) > replication.PREFETCH:
            queued.set()  # the reader has filled its queue while the first batch waits
        return batch

    def apply(*args: Any, **kwargs: Any) -> Any:
        if not applies:
            assert queued.wait(30)
        applies.append((kwargs["cursor_from"], kwargs["cursor_to"]))
        return plain_apply(*args, **kwargs)

    transport.pull = pull  # type: ignore[method-assign,assignment]
    b.records.apply = apply
    stats = b.replication.sync_with(transport, [COLLECTION])

    assert stats["pulled"] == RECORDS
    assert rows(b) == rows(a)
    assert len(pulls) == -(-RECORDS // BATCH)
    # the transactions cover the feed without gaps, and some covered several batches
    assert applies[0][0] == 0
    assert all(prev[1] == nxt[0] for prev, nxt in pairwise(applies))
    assert applies[-1][1] == pulls[-1]
    assert len(applies) < len(pulls)
    assert b.records.checkpoint(COLLECTION, a.records.instance_id)["cursor"] == pulls[-1]


def test_a_cut_mid_pull_keeps_applied_batches_and_the_next_sync_resumes(
    pair: tuple[Any, Any],
) -> None:
    a, b = pair
    calls = {"pull": 0}

    def fault(call: str, phase: str) -> None:
        if call == "pull" and phase == "before":
            calls["pull"] += 1
            if calls["pull"] == 10:
                raise cut()

    with pytest.raises(TransientError):
        b.replication.sync_with(LocalTransport(a.replication_protocol, fault), [COLLECTION])

    # the checkpoint covers exactly what was applied: every change of A up to it is here
    cursor = b.records.checkpoint(COLLECTION, a.records.instance_id)["cursor"]
    assert cursor > 0
    page = a.records.changes(COLLECTION, since=0, limit=1000)
    covered = {r.uuid for r in page.changes if r.seq <= cursor}
    have = rows(b)
    assert covered and covered <= set(have)
    assert len(have) < RECORDS

    stats = b.replication.sync_with(LocalTransport(a.replication_protocol), [COLLECTION])
    assert stats["pulled"] == RECORDS - len(covered)
    assert rows(b) == rows(a)


def test_a_peer_that_speaks_version_1_gets_and_sends_a_stamp_per_field(
    pair: tuple[Any, Any],
) -> None:
    """Version 2 stores and sends the stamp most fields share once; an older peer
    (protocol 1) is served every field's stamp, and what it sends is understood."""
    a, b = pair
    a.records.put(COLLECTION, {"i": -1, "text": "edited later"}, uuid=FIXED)
    a.records.put(COLLECTION, {"i": -1, "text": "edited"}, uuid=FIXED)
    for protocol, shared in ((2, True), (1, False)):
        batch = LocalTransport(a.replication_protocol, protocol=protocol).pull(
            COLLECTION, "someone", 0, 500, 10**7
        )
        assert batch["protocol"] == protocol
        metas = {c["uuid"]: c["meta"] for c in batch["changes"]}
        assert len(metas) == RECORDS + 1
        if shared:
            assert all(set(m) <= {"s", "f"} and "s" in m for m in metas.values())
            assert list(metas[FIXED]["f"]) == ["text"]  # only the edited field
        else:
            assert all(list(m) == ["f"] for m in metas.values())
            assert all(sorted(m["f"]) == ["i", "text"] for m in metas.values())
            assert len(metas[FIXED]["f"]["text"]) == 5  # with the stamp it replaced
    # b syncs with a over version 1 both ways and ends with the same states
    stats = b.replication.sync_with(LocalTransport(a.replication_protocol, protocol=1))
    assert stats["pulled"] == RECORDS + 1
    b.records.put(COLLECTION, {"i": -2, "text": "from b"}, uuid=FIXED)
    transport = LocalTransport(a.replication_protocol, protocol=1)
    b.replication.sync_with(transport)
    assert b'"protocol":1' in transport.sent[-1] and b'"s":' not in transport.sent[-1]
    assert rows(a) == rows(b)
    fetched = transport.fetch(COLLECTION, [FIXED])
    assert list(fetched[0]["meta"]) == ["f"]


FIXED = "00000000-0000-4000-8000-00000000f1ed"
