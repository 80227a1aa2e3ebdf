"""Two sinks reading one table cannot share its ``last_sync`` column, through a real
``dataferry serve`` (REST and the CLI), on SQLite and PostgreSQL tables."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.support.receiver import Receiver
from tests.support.tables import AppTable, make_table, table_sink, table_source
from tests.support.waiting import wait_for

FAST = {"DATAFERRY_SINK__LEASE_SECONDS": "2", "DATAFERRY_SINK__TICK_SECONDS": "0.05"}


@pytest.fixture(params=["sqlite", "postgresql"])
def table(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppTable]:
    yield from make_table(request.param, tmp_path)


def same_table_written_differently(table: AppTable, tmp_path: Path) -> dict[str, str]:
    """The URL and name of ``table`` spelt otherwise: another driver name or host name
    for the same server, a password, a link to the SQLite file's folder, the schema."""
    url = sa.make_url(table.url)
    if table.sqlite:
        db = Path(str(url.database))
        link = tmp_path / "link"
        link.symlink_to(db.parent)
        url_there = f"sqlite+pysqlite:///{link}/./{db.name}?timeout=5"
        return {"url": url_there, "name": f"main.{table.name}"}
    other = url.set(host="LOCALHOST", port=None, password="hunter2")
    return {"url": other.render_as_string(hide_password=False), "name": f"public.{table.name}"}


def test_a_second_sink_setting_the_same_last_sync_column_is_refused(
    server_factory: Any, table: AppTable, receiver: Receiver, tmp_path: Path
) -> None:
    """Before, the second sink was stored, and whichever of the two delivered a row
    first set ``last_sync``: the other sink never sent that row. Now adding (REST, CLI)
    or changing a sink so that it would set a column another sink sets (the same
    database, however its URL is written) is a 409 naming the other sink, and nothing
    is stored; with its own ``last_sync`` column each sink delivers every row."""
    srv = server_factory("a", FAST)
    table.insert(1)
    first = table_sink(table, receiver.url, name="a")
    second = table_sink(table, receiver.url, name="b")
    second["source"]["table"].update(same_table_written_differently(table, tmp_path))
    with httpx.Client(base_url=srv.url) as http:
        assert http.post("/api/v1/sinks", json=first).status_code == 201
        r = http.post("/api/v1/sinks", json=second)
        assert r.status_code == 409, r.text
        detail = r.json()["detail"]
        assert "sink 'a' already reads table" in detail and "'last_sync'" in detail
        assert "its own last_sync column" in detail and "hunter2" not in detail
        assert [d["name"] for d in http.get("/api/v1/sinks").json()["sinks"]] == ["a"]
        table_arg = second["source"]["table"]
        bad = srv.cli(
            "sink", "add", "b", "--table", table_arg["name"], "--table-url", table_arg["url"],
            check=False,
        )  # fmt: skip
        assert bad.returncode == 1 and "sink 'a' already reads table" in bad.stderr, bad
        assert [d["name"] for d in http.get("/api/v1/sinks").json()["sinks"]] == ["a"]

        # Its own column: taken, and both sinks deliver the row.
        table.add_column("last_sync_b")
        second["source"]["table"]["last_sync"] = "last_sync_b"
        created = http.post("/api/v1/sinks", json=second)
        assert created.status_code == 201, created.text
        wait_for(lambda: len(receiver.applied("1")) == 2, every=0.1)

        def both_synced() -> bool:  # marked once the partner's answer is in
            row = table.row(1)
            return row is not None and row["last_sync"] == row["modified"] == row["last_sync_b"]

        wait_for(both_synced, every=0.1)

        # Changing it back onto the shared column: refused, nothing changes.
        r = http.patch("/api/v1/sinks/b", json={"source": first["source"]})
        assert r.status_code == 409 and "sink 'a' already reads" in r.json()["detail"], r.text
        after = http.get("/api/v1/sinks/b").json()
        assert after["updated"] == created.json()["updated"]
        assert after["source"]["table"]["last_sync"] == "last_sync_b"

        # Another table of the same database may use a column of the same name.
        other_gen = make_table("sqlite" if table.sqlite else "postgresql", tmp_path)
        other = next(other_gen)
        try:
            r = http.post("/api/v1/sinks", json=table_sink(other, receiver.url, name="c"))
            assert r.status_code == 201, r.text
        finally:
            other_gen.close()


def test_a_sink_whose_secrets_cannot_be_opened_does_not_block_adding_others(
    server_factory: Any, database_url: str, table: AppTable, receiver: Receiver
) -> None:
    """The check compares the new sink with every other sink's table URL, which is
    sealed; one sealed under a secret key since changed cannot be opened. It is left
    out of the comparison: adding a sink still works."""
    from dataferry.db.engine import Database
    from dataferry.db.models.sinks import SinkRow

    srv = server_factory("a", FAST)
    db = Database(database_url)
    with httpx.Client(base_url=srv.url) as http:
        lost = table_sink(table, "", name="lost", paused=True)
        assert http.post("/api/v1/sinks", json=lost).status_code == 201
        with db.session() as s:  # sealed under another key
            s.query(SinkRow).filter_by(name="lost").one().secrets = "gAAAAAB-not-ours"
        table.add_column("own_sync")
        other = table_sink(table, receiver.url, name="ok", table_extra={"last_sync": "own_sync"})
        r = http.post("/api/v1/sinks", json=other)
        assert r.status_code == 201, r.text
    db.engine.dispose()


def test_of_two_sinks_an_older_version_stored_on_one_column_only_the_oldest_runs(
    server_factory: Any, database_url: str, table: AppTable, receiver: Receiver
) -> None:
    """Two sinks sharing a last_sync column, stored before such pairs were refused, both
    ran: each row went to whichever sent it first, and the other partner never got it.
    Now only the oldest runs (it sends every row); the other is idle, and says it sets
    the column the oldest sets. Given its own column, it runs and sends every row."""
    from dataferry.db.base import utcnow
    from dataferry.db.engine import Database
    from dataferry.db.models.sinks import SinkRow

    srv = server_factory("a", FAST)
    db = Database(database_url)
    table.add_column("b_sync")

    def tagged(name: str, last_sync: str, paused: bool = False) -> dict[str, Any]:
        fields = {"id": "id", "status": "status", "sink": {"const": name}}
        extra = {"last_sync": last_sync}
        return table_sink(
            table,
            receiver.url,
            name=name,
            mapping={"fields": fields},
            table_extra=extra,
            paused=paused,
        )

    def sent_by(name: str) -> set[str]:
        return {r.id for r in receiver.applied() if r.document.get("sink") == name}

    with httpx.Client(base_url=srv.url) as http:
        # b paused until its row is rewritten: a round of the daemon that read b before
        # the rewrite could otherwise still poll it with its own column, and send rows.
        for name, last_sync in (("a", "last_sync"), ("b", "b_sync")):
            r = http.post("/api/v1/sinks", json=tagged(name, last_sync, paused=name == "b"))
            assert r.status_code == 201, r.text
        with db.session() as s:  # what an older version could have stored
            row = s.query(SinkRow).filter_by(name="b").one()
            source = {"table": {**row.spec["source"]["table"], "last_sync": "last_sync"}}
            row.spec = {**row.spec, "source": source}
            row.updated = utcnow()
        assert http.post("/api/v1/sinks/b/resume").status_code == 200
        docs = {d["name"]: d for d in http.get("/api/v1/sinks").json()["sinks"]}
        assert (docs["a"]["state"], docs["a"]["idle_reason"]) == ("active", "")
        assert docs["b"]["state"] == "idle", docs["b"]
        reason = docs["b"]["idle_reason"]
        assert "the last_sync column that sink 'a' sets" in reason and "its own" in reason
        assert http.get("/api/v1/sinks/b").json()["idle_reason"] == reason

        for i in range(1, 6):
            table.insert(i)
        http.post("/api/v1/sinks/a/poll")
        wait_for(lambda: sent_by("a") == {"1", "2", "3", "4", "5"}, every=0.1)
        http.post("/api/v1/sinks/b/poll")
        time.sleep(0.5)
        assert sent_by("b") == set()

        # Its own column: it runs, and sends every row.
        mended = http.patch("/api/v1/sinks/b", json={"source": tagged("b", "b_sync")["source"]})
        assert mended.status_code == 200 and mended.json()["state"] == "active", mended.text
        wait_for(lambda: sent_by("b") == {"1", "2", "3", "4", "5"}, every=0.1)
    db.engine.dispose()


def test_two_sinks_stored_at_once_on_one_column_are_refused_by_the_database(
    core: Any, table: AppTable, receiver: Receiver
) -> None:
    """The check reads the stored sinks, then the sink is stored: two adds (or an add
    and a change) at once could both pass it and both be stored. Now each table sink
    stores a claim of its column that the database keeps unique: the one stored second
    is the same 409, and nothing of it is stored. Here the competing sink is stored
    between this call's check and its write (the source check, which opens the table)."""
    from dataferry.errors import Conflict

    check = core.sinks.check
    competing: list[dict[str, Any]] = []

    def check_then_compete(spec: Any) -> None:
        check(spec)
        while competing:
            core.sinks.add(competing.pop())

    core.sinks.check = check_then_compete
    competing.append(table_sink(table, receiver.url, name="a"))
    with pytest.raises(Conflict, match="sink 'a' already reads table") as err:
        core.sinks.add(table_sink(table, receiver.url, name="b"))
    assert "its own last_sync column" in err.value.message
    assert [d["name"] for d in core.sinks.list()] == ["a"]

    # A change onto the column, raced the same way.
    table.add_column("c_sync")
    table.add_column("d_sync")
    core.sinks.add(table_sink(table, receiver.url, name="c", table_extra={"last_sync": "c_sync"}))
    before = core.sinks.get("c")
    competing.append(table_sink(table, receiver.url, name="d", table_extra={"last_sync": "d_sync"}))
    with pytest.raises(Conflict, match="sink 'd' already reads table"):
        core.sinks.update("c", {"source": table_source(table, last_sync="d_sync")})
    after = core.sinks.get("c")
    assert after["source"] == before["source"] and after["updated"] == before["updated"]
    assert sorted(d["name"] for d in core.sinks.list()) == ["a", "c", "d"]


def test_a_database_holding_an_old_shared_pair_still_upgrades(
    database_url: str, table: AppTable, receiver: Receiver, tmp_path: Path
) -> None:
    """Sinks stored before the claim existed may share a column (stored before such
    pairs were refused): the upgrade keeps both, only the oldest runs, and the claim
    still refuses a new sink on that column."""
    from alembic import command

    from dataferry.app import build
    from dataferry.config import Settings
    from dataferry.db import migrate
    from dataferry.db.engine import Database
    from dataferry.errors import Conflict

    settings = Settings(home=tmp_path / "home", database_url=database_url)
    core = build(settings)
    try:
        table.add_column("b_sync")
        core.sinks.add(table_sink(table, receiver.url, name="a"))
        b = table_sink(table, receiver.url, name="b", table_extra={"last_sync": "b_sync"})
        core.sinks.add(b)
    finally:
        core.stop()
    command.downgrade(migrate.alembic_config(database_url), "0008_sinks")
    db = Database(database_url)
    with db.engine.begin() as c:  # what an older version could have stored
        spec = c.execute(sa.text("SELECT spec FROM sinks WHERE name = 'b'")).scalar_one()
        spec = spec if isinstance(spec, dict) else json.loads(spec)
        spec["source"]["table"]["last_sync"] = "last_sync"
        c.execute(
            sa.text("UPDATE sinks SET spec = :spec WHERE name = 'b'"), {"spec": json.dumps(spec)}
        )
    db.dispose()

    core = build(settings)
    try:
        docs = {d["name"]: d for d in core.sinks.list()}
        assert docs["a"]["state"] == "active" and docs["b"]["state"] == "idle"
        assert "the last_sync column that sink 'a' sets" in docs["b"]["idle_reason"]
        with pytest.raises(Conflict, match="already reads table"):
            core.sinks.add(table_sink(table, receiver.url, name="c"))
        # Given its own column again, it runs.
        mended = core.sinks.update("b", {"source": table_source(table, last_sync="b_sync")})
        assert mended["state"] == "active"
    finally:
        core.stop()


def test_each_of_two_sinks_with_their_own_columns_delivers_a_deletion(
    server_factory: Any, table: AppTable
) -> None:
    """Two sinks read one table, each with its own last_sync column, each to its own
    partner. Both deliver rows 1 and 2; then row 1 is deleted while sink b is paused
    (as when b polls later than a, or its partner is down). Sink a delivers the
    deletion; b, resumed, must still send it to its partner, and the row may go only
    once both have; row 2 stays. Before, a's delivery removed the row, and b never
    sent the deletion."""
    srv = server_factory("a", FAST)
    table.add_column("b_sync")
    for i in (1, 2):
        table.insert(i)
    first, second = Receiver().start(), Receiver().start()
    try:
        a = table_sink(table, first.url, name="a")
        b = table_sink(table, second.url, name="b", table_extra={"last_sync": "b_sync"})
        with httpx.Client(base_url=srv.url) as http:
            for sink in (a, b):
                assert http.post("/api/v1/sinks", json=sink).status_code == 201

            def synced(rid: int) -> bool:
                row = table.row(rid)
                return row is not None and row["last_sync"] == row["b_sync"] == row["modified"]

            wait_for(lambda: synced(1) and synced(2), every=0.1)
            assert http.post("/api/v1/sinks/b/pause").status_code == 200
            table.delete(1)
            http.post("/api/v1/sinks/a/poll")
            wait_for(lambda: [r.status for r in first.applied("1")] == ["new", "deleted"])
            assert table.row(1) is not None, "removed before sink b delivered the deletion"
            assert http.post("/api/v1/sinks/b/resume").status_code == 200
            http.post("/api/v1/sinks/b/poll")
            wait_for(
                lambda: [r.status for r in second.applied("1")] == ["new", "deleted"],
                timeout=15,
            )
            wait_for(lambda: table.row(1) is None, timeout=15)  # gone once both delivered
            assert table.row(2) is not None
    finally:
        first.stop()
        second.stop()


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


def statuses(receiver: Receiver, key: str) -> list[str]:
    return [r.status for r in receiver.requests(key)]


def test_a_sink_that_never_sent_a_deleted_row_drops_it_and_the_row_goes_once_both_have(
    core: Any, table: AppTable, partners: tuple[Receiver, Receiver]
) -> None:
    """Row 1 was sent by a only; row 2 by nobody. Each sink's outcome is its own: a
    delivers 1's deletion, b drops it without a request (it never sent row 1); row 2
    is dropped by both. A row goes only once both sinks have an outcome for it, and a
    delivered deletion is not sent again while the row waits for the other sink."""
    first, second = partners
    add_two_sinks(core, table, partners)
    table.insert(1)
    table.insert(3)
    assert core.sinks.run_once("a").delivered == 2
    table.insert(2)
    table.delete(1)
    table.delete(2)
    stats = core.sinks.run_once("a")
    assert (stats.delivered, stats.dropped) == (1, 1)
    assert table.row(1) is not None and table.row(2) is not None, "b has no outcome yet"
    for _ in range(2):  # waiting for b: nothing is sent again
        assert core.sinks.run_once("a").delivered == 0
    assert statuses(first, "1") == ["new", "deleted"] and statuses(first, "2") == []
    stats = core.sinks.run_once("b")
    assert (stats.delivered, stats.dropped) == (1, 2)  # row 3 is new to b
    assert set(table.rows()) == {3}
    assert statuses(second, "1") == statuses(second, "2") == []
    assert statuses(second, "3") == ["new"]


def test_removing_a_sink_that_holds_a_deleted_row_lets_the_other_remove_it(
    core: Any, table: AppTable, partners: tuple[Receiver, Receiver]
) -> None:
    """Sink b (paused) holds row 1 while it has not delivered the deletion. Removed, it
    holds nothing (its outbox goes with it): the row is removed (by the removal itself,
    see test_sinks_held_deletions), and a does not send the deletion again."""
    first, second = partners
    add_two_sinks(core, table, partners)
    table.insert(1)
    table.insert(2)
    core.sinks.run_once("a")
    core.sinks.run_once("b")
    core.sinks.pause("b")
    table.delete(1)
    assert core.sinks.run_once("a").delivered == 1
    assert table.row(1) is not None, "removed before sink b had an outcome"
    core.sinks.remove("b")
    assert core.sinks.run_once("a").delivered == 0
    assert set(table.rows()) == {2}
    assert statuses(first, "1") == ["new", "deleted"]
    assert statuses(second, "1") == ["new"]


def test_a_row_undeleted_while_waiting_for_the_other_sink_stays_and_both_send_it_modified(
    core: Any, table: AppTable, partners: tuple[Receiver, Receiver]
) -> None:
    """a delivered row 1's deletion; before b looked, the application un-deleted it
    (a later ``modified``). The row is not removed, and both sinks send the new
    version as modified; b never sends the deletion it did not see."""
    first, second = partners
    add_two_sinks(core, table, partners)
    table.insert(1)
    core.sinks.run_once("a")
    core.sinks.run_once("b")
    table.delete(1)
    assert core.sinks.run_once("a").delivered == 1
    table.edit(1, deleted=None, comment="back")
    assert core.sinks.run_once("a").delivered == 1
    assert core.sinks.run_once("b").delivered == 1
    assert statuses(first, "1") == ["new", "deleted", "modified"]
    assert statuses(second, "1") == ["new", "modified"]
    row = table.row(1)
    assert row is not None and row["deleted"] is None and row["comment"] == "back"
    assert row["last_sync"] == row["b_sync"] == row["modified"]
    assert core.sinks.run_once("a").delivered == core.sinks.run_once("b").delivered == 0


def test_a_single_sink_removes_a_deleted_row_right_after_delivering_it(
    core: Any, table: AppTable, receiver: Receiver, tmp_path: Path
) -> None:
    """The only sink reading the table: the row is removed as soon as the partner
    accepted its deletion, as before. A sink on another table of the same database
    (paused, never polled) holds none of this table's rows."""
    kind = "sqlite" if table.sqlite else "postgresql"
    other_gen = make_table(kind, tmp_path)
    other = next(other_gen)
    try:
        core.sinks.add(table_sink(other, receiver.url, name="other", paused=True))
        core.sinks.add(table_sink(table, receiver.url, name="a"))
        table.insert(1)
        table.insert(2)
        core.sinks.run_once("a")
        table.delete(1)
        assert core.sinks.run_once("a").delivered == 1
        assert set(table.rows()) == {2}
        a = core.sinks.store.get("a")
        assert [r["key"] for r in core.sinks.store.outbox(a.id)] == ["2"]
        assert statuses(receiver, "1") == ["new", "deleted"]
    finally:
        other_gen.close()


def test_an_outcome_recorded_before_a_crash_removes_the_row_at_the_next_start(
    settings: Any, table: AppTable, partners: tuple[Receiver, Receiver], monkeypatch: Any
) -> None:
    """The process stops after the outcome of a delivered deletion is recorded and
    before the row is removed (the removal step is cut out). Started again, the sink's
    next poll removes the row, and the partner gets no second request."""
    from dataferry.app import build

    first, _ = partners
    core = build(settings)
    try:
        add_two_sinks(core, table, partners)
        table.insert(1)
        core.sinks.run_once("a")
        core.sinks.run_once("b")
        table.delete(1)
        monkeypatch.setattr(core.sinks.engine, "sweep", lambda *args, **kwargs: 0)
        assert core.sinks.run_once("b").delivered == 1
        assert core.sinks.run_once("a").delivered == 1
        assert table.row(1) is not None  # both outcomes recorded, the row still there
    finally:
        core.stop()
    core = build(settings)
    try:
        assert core.sinks.run_once("a").delivered == 0
        assert table.row(1) is None
        assert statuses(first, "1") == ["new", "deleted"]
    finally:
        core.stop()


def test_a_sink_whose_row_filter_leaves_a_deleted_row_out_does_not_hold_it(
    core: Any, table: AppTable, partners: tuple[Receiver, Receiver]
) -> None:
    """Sink b reads only rows its ``where`` selects: it will never read row 1, so it
    has no outcome to wait for. a's delivery of row 1's deletion removes the row at
    once; row 2, which b reads, waits for b."""
    first, second = partners
    table.add_column("b_sync")
    core.sinks.add(table_sink(table, first.url, name="a"))
    b = table_sink(
        table, second.url, name="b", table_extra={"last_sync": "b_sync", "where": "id <> 1"}
    )
    core.sinks.add(b)
    table.insert(1)
    table.insert(2)
    core.sinks.run_once("a")
    core.sinks.run_once("b")
    table.delete(1)
    table.delete(2)
    assert core.sinks.run_once("a").delivered == 2
    assert set(table.rows()) == {2}
    assert core.sinks.run_once("b").delivered == 1
    assert table.rows() == {}
    assert statuses(second, "1") == [] and statuses(second, "2") == ["new", "deleted"]


def test_a_sink_moved_to_another_table_no_longer_holds_rows_of_the_old_one(
    core: Any, table: AppTable, partners: tuple[Receiver, Receiver], tmp_path: Path
) -> None:
    """Sink b (paused) holds row 1 until it has an outcome for its deletion. Given
    another table as its source, it reads that one from its start and holds nothing
    of the old table: the row is removed (by the change itself, see
    test_sinks_held_deletions), and a's next poll sends nothing more."""
    first, second = partners
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
        core.sinks.update("b", {"source": table_source(other)})
        assert core.sinks.run_once("a").delivered == 0
        assert table.rows() == {}
        assert statuses(first, "1") == ["new", "deleted"] and statuses(second, "1") == ["new"]
    finally:
        other_gen.close()


def test_a_row_polled_but_never_sent_then_deleted_is_dropped_by_each_sink(
    core: Any, table: AppTable, partners: tuple[Receiver, Receiver]
) -> None:
    """Sink a polled row 1 (its "new" waits in the outbox, not yet sent), then the row
    was deleted: a drops the deletion without a request (its outbox row becomes the
    dropped outcome), b too; the row goes once both have."""
    first, second = partners
    add_two_sinks(core, table, partners)
    table.insert(1)
    engine, store = core.sinks.engine, core.sinks.store
    assert engine.poll(engine.sink(store.get("a"))) == 1
    table.delete(1)
    assert core.sinks.run_once("a").dropped == 1
    assert table.row(1) is not None
    assert core.sinks.run_once("b").dropped == 1
    assert table.rows() == {}
    assert first.requests() == [] and second.requests() == []
