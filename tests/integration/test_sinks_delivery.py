"""Delivery rules against a real receiver: failures do not block others, dead
letters, redirects, answers that count, idle sinks, secrets, bad input."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from dataferry.errors import Conflict, InvalidRequest
from tests.support.receiver import ACCEPT, FAIL_500, GARBAGE, Receiver
from tests.support.tables import AppTable, make_table, table_sink


@pytest.fixture
def table(tmp_path: Path) -> Iterator[AppTable]:
    yield from make_table("sqlite", tmp_path)


def run_until(core: Any, name: str, done: Any, rounds: int = 100) -> None:
    for _ in range(rounds):
        core.sinks.run_once(name)
        if done():
            return
        time.sleep(0.03)
    raise AssertionError("not done")


def test_a_failing_record_does_not_block_the_others_and_becomes_a_dead_letter(
    core: Any, table: AppTable, receiver: Receiver
) -> None:
    for i in range(1, 21):
        table.insert(i)
    receiver.choose = lambda doc: FAIL_500 if doc["id"] == "5" else ACCEPT
    core.sinks.add(table_sink(table, receiver.url, give_up_after=3))
    core.sinks.run_once("vet")
    # Every other record arrived while record 5 was still failing.
    assert set(receiver.state) == {str(i) for i in range(1, 21)} - {"5"}
    run_until(core, "vet", lambda: core.sinks.get("vet")["changes"]["dead"] == 1)
    [dead] = core.sinks.failures("vet")
    assert dead["key"] == "5" and dead["attempts"] == 3 and "HTTP 500" in dead["error"]
    assert len(receiver.requests("5")) == 3
    row5 = table.row(5)
    assert row5 is not None and row5["last_sync"] is None
    # Operators fix the partner and re-queue the dead letter.
    receiver.choose = lambda doc: ACCEPT
    assert core.sinks.retry("vet") == 1
    core.sinks.run_once("vet")
    assert "5" in receiver.state and core.sinks.failures("vet") == []
    doc = core.sinks.get("vet")
    assert doc["changes"]["dead"] == 0 and doc["delivered_total"] == 20


def test_retries_back_off_up_to_the_cap(core: Any, table: AppTable, receiver: Receiver) -> None:
    from dataferry.db.models import SinkOutboxRow

    table.insert(1)
    receiver.choose = lambda doc: FAIL_500
    core.sinks.add(table_sink(table, receiver.url, retry_interval=10, retry_cap=40))
    waits = []
    for _ in range(5):
        with core.db.session() as s:  # make the row due now, keep its attempts
            row = s.query(SinkOutboxRow).one_or_none()
            if row is not None:
                row.next_attempt = row.created
        core.sinks.run_once("vet")
        with core.db.read() as s:
            row = s.query(SinkOutboxRow).one()
            waits.append((row.next_attempt - row.updated).total_seconds())
    # ceilings 10, 20, 40, 40, 40: each wait in the upper half of its ceiling
    for wait, ceiling in zip(waits, [10, 20, 40, 40, 40], strict=True):
        assert ceiling / 2 - 0.1 <= wait <= ceiling + 0.1


def test_redirect_to_another_host_is_not_followed(
    core: Any, table: AppTable, receiver: Receiver
) -> None:
    elsewhere = Receiver().start()
    try:
        receiver.redirect_to = elsewhere.url.replace("127.0.0.1", "localhost")
        table.insert(1)
        core.sinks.add(table_sink(table, receiver.url))
        stats = core.sinks.run_once("vet")
        assert stats.delivered == 0 and stats.failed >= 1
        assert elsewhere.requests() == []
        doc = core.sinks.get("vet")
        assert "redirect" in doc["last_error"] and "not followed" in doc["last_error"]
        row = table.row(1)
        assert row is not None and row["last_sync"] is None
    finally:
        elsewhere.stop()


def test_a_200_with_garbage_counts_as_delivered(
    core: Any, table: AppTable, receiver: Receiver
) -> None:
    table.insert(1)
    receiver.choose = lambda doc: GARBAGE
    core.sinks.add(table_sink(table, receiver.url))
    assert core.sinks.run_once("vet").delivered == 1
    row = table.row(1)
    assert row is not None and row["last_sync"] == row["modified"]


def test_only_200_counts_unless_any_2xx_is_configured(core: Any, tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Created(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Created)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/"
    try:
        for name, accept, delivered in (("strict", "200", 0), ("lenient", "2xx", 1)):
            gen = make_table("sqlite", tmp_path / name)
            (tmp_path / name).mkdir()
            t = next(gen)
            t.insert(1)
            d = table_sink(t, url, accept=accept)
            d["name"] = name
            core.sinks.add(d)
            assert core.sinks.run_once(name).delivered == delivered
            gen.close()
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_sink_without_url_stays_idle_and_says_so(
    core: Any, table: AppTable, receiver: Receiver
) -> None:
    table.insert(1)
    core.sinks.add(table_sink(table, ""))
    [doc] = core.sinks.list()
    assert doc["state"] == "idle" and doc["idle_reason"] == "no target URL configured"
    assert core.sinks.run_once("vet").delivered == 0
    core.sinks.update("vet", {"url": receiver.url})
    assert core.sinks.run_once("vet").delivered == 1


def test_paused_sink_sends_nothing_until_resumed(
    core: Any, table: AppTable, receiver: Receiver
) -> None:
    table.insert(1)
    core.sinks.add(table_sink(table, receiver.url))
    assert core.sinks.pause("vet")["state"] == "paused"
    assert core.sinks.run_once("vet").delivered == 0
    assert core.sinks.resume("vet")["state"] == "active"
    assert core.sinks.run_once("vet").delivered == 1


def test_api_key_is_sealed_and_used_in_mapping_and_headers(
    core: Any, table: AppTable, receiver: Receiver
) -> None:
    table.insert(1, species="Eucalyptus")
    core.sinks.add(
        table_sink(
            table,
            receiver.url,
            api_key="s3cret-key",
            headers={"X-Api-Key": "{api_key}"},
            mapping={
                "fields": {"id": "id", "apiKey": "apiKey", "species": "record.species"},
            },
        )
    )
    doc = core.sinks.get("vet")
    assert doc["api_key"] == "(set)" and "s3cret-key" not in str(doc)
    with core.db.read() as s:
        dump = str(s.execute(text("SELECT * FROM sinks")).all())
    assert "s3cret-key" not in dump
    core.sinks.run_once("vet")
    [got] = receiver.applied()
    assert got.document == {"id": "1", "apiKey": "s3cret-key", "species": "Eucalyptus"}
    assert receiver.headers[0]["x-api-key"] == "s3cret-key"


def test_table_without_the_named_columns_is_refused(core: Any, table: AppTable) -> None:
    d = table_sink(table, "http://127.0.0.1:9/")
    d["source"]["table"]["modified"] = "changed_at"
    d["source"]["table"]["last_sync"] = "synced_at"
    with pytest.raises(InvalidRequest) as err:
        core.sinks.add(d)
    assert "modified column 'changed_at'" in err.value.message
    assert "last_sync column 'synced_at'" in err.value.message
    assert core.sinks.list() == []


def test_unknown_table_and_bad_filter_are_refused(core: Any, table: AppTable) -> None:
    d = table_sink(table, "http://127.0.0.1:9/")
    d["source"]["table"]["name"] = "nope"
    with pytest.raises(InvalidRequest, match="table 'nope' does not exist"):
        core.sinks.add(d)
    d = table_sink(table, "http://127.0.0.1:9/")
    d["source"]["table"]["where"] = "no_such_column = 1"
    with pytest.raises(InvalidRequest, match="row filter"):
        core.sinks.add(d)
    assert core.sinks.list() == []


def test_unknown_collection_is_refused(core: Any) -> None:
    with pytest.raises(InvalidRequest, match="collection 'nope'"):
        core.sinks.add({"name": "c", "source": {"collection": "nope"}, "url": ""})
    assert core.sinks.list() == []


def test_duplicate_name_is_a_conflict(core: Any, table: AppTable) -> None:
    core.sinks.add(table_sink(table, ""))
    with pytest.raises(Conflict):
        core.sinks.add(table_sink(table, ""))


def test_table_url_password_is_not_shown(core: Any, table: AppTable) -> None:
    # A PostgreSQL-style URL is checked at add: refused, and the password is not echoed.
    d = table_sink(table, "")
    d["source"]["table"]["url"] = "postgresql+psycopg://u:hunter2@127.0.0.1:9/db"
    with pytest.raises(InvalidRequest) as err:
        core.sinks.add(d)
    assert "hunter2" not in err.value.message
    doc = core.sinks.add(table_sink(table, ""))
    assert doc["source"]["table"]["url"] == table.url


def test_a_deletion_racing_the_first_send_is_delivered_not_dropped(
    core: Any, table: AppTable, receiver: Receiver
) -> None:
    """A row deleted before it was ever sent is dropped without a request, unless a
    sender claims its first send while the poll is deciding: then the partner may have
    it, and the deletion must be sent. On PostgreSQL the poll really runs inside the
    claim's transaction window (it waits on the row lock); on SQLite writers are
    serialised, so the poll sees the committed claim."""
    import threading

    from sqlalchemy import update

    from dataferry.db.models import SinkOutboxRow as O

    table.insert(1)
    core.sinks.add(table_sink(table, receiver.url))
    engine, store = core.sinks.engine, core.sinks.store
    sink = engine.sink(store.get("vet"))
    assert engine.poll(sink) == 1  # the "new" is in the outbox, not yet sent
    table.delete(1)
    db = store.db
    polled: list[int] = []
    with db.session() as s:  # another process claims the first send
        s.execute(update(O).where(O.key == "1").values(sent=True))
        poller = threading.Thread(target=lambda: polled.append(engine.poll(sink)))
        poller.start()
        if not db.is_sqlite:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with db.engine.connect() as c:
                    waiting = c.scalar(
                        text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                    )
                if waiting:
                    break
                time.sleep(0.02)
            else:
                raise AssertionError("the poll never waited on the claimed row")
    poller.join(30)
    assert polled == [1]
    assert table.row(1) is not None, "the row was dropped though its first send was claimed"
    [row] = store.outbox(sink.id)
    assert (row["status"], row["state"]) == ("deleted", "pending")
    # The deletion goes out as soon as it is due.
    core.sinks.run_once("vet")
    assert [(r.id, r.status) for r in receiver.applied()] == [("1", "deleted")]
    assert table.rows() == {}


def test_a_late_answer_for_an_older_version_changes_nothing(
    core: Any, table: AppTable, receiver: Receiver
) -> None:
    """Process A's lease lapses while its send of version 1 is slow; B sends version 2
    and records it; then A's answer arrives. Neither the table's ``last_sync`` nor the
    outbox may go back to version 1 (before the fix the record was stuck: the table
    said "changed", the outbox said "delivered")."""
    table.insert(1, comment="v1")
    core.sinks.add(table_sink(table, receiver.url))
    engine, store = core.sinks.engine, core.sinks.store
    sink = engine.sink(store.get("vet"))
    engine.poll(sink)
    [a] = store.claim(sink.id, "A", 10, lease_seconds=0.01)
    time.sleep(0.05)  # A's lease lapses
    time.sleep(0.01)  # a later modified time
    table.edit(1, comment="v2")
    engine.poll(sink)
    [b] = store.claim(sink.id, "B", 10, lease_seconds=60)
    assert a.version != b.version
    with httpx.Client(timeout=5) as http:
        engine.complete(sink, "B", [(b, engine.send(sink, http, b))])
        engine.complete(sink, "A", [(a, engine.send(sink, http, a))])
    row = table.row(1)
    assert row is not None and row["last_sync"] == row["modified"]
    [out] = store.outbox(sink.id)
    assert (out["state"], out["version"], out["delivered_version"]) == (
        "delivered",
        b.version,
        b.version,
    )
    assert core.sinks.run_once("vet").delivered == 0


def test_a_document_that_cannot_be_built_is_a_dead_letter_at_once(
    core: Any, table: AppTable, receiver: Receiver
) -> None:
    """A float cast giving NaN or Infinity (not JSON) was sent, and an int cast of an
    infinity raised OverflowError: "cannot build the document", retried for ever. On
    PostgreSQL an infinite column value even failed every poll of the sink (the outbox
    refused it). Now the change is a dead letter after its first attempt, the error
    naming the field; the other records are delivered, and a fixed record goes again."""
    table.insert(1, comment="nan")
    table.insert(2, comment="1e400")
    table.insert(3, comment="1", is_admin=float("inf"))  # SQLite stores a REAL infinity
    table.insert(4, comment="2.5")
    fields = {
        "id": "id",
        "score": {"from": "record.comment", "type": "float"},
        "admin": {"from": "record.is_admin", "type": "int"},
    }
    core.sinks.add(table_sink(table, receiver.url, mapping={"fields": fields}))
    table.add_column("plain_sync")  # a second sink needs its own last_sync column
    plain = table_sink(table, receiver.url, name="plain", table_extra={"last_sync": "plain_sync"})
    core.sinks.add(plain)  # the default document
    for _ in range(3):
        core.sinks.run_once("vet")
    assert [r.id for r in receiver.log if "score" in r.document] == ["4"]
    assert receiver.state["4"] == {"id": "4", "score": 2.5, "admin": 0}
    failures = {f["key"]: f for f in core.sinks.failures("vet")}
    assert sorted(failures) == ["1", "2", "3"]
    assert all(f["attempts"] == 1 for f in failures.values())
    assert "field 'score': record.comment is 'nan' as a float" in failures["1"]["error"]
    assert "field 'score': record.comment is '1e400' as a float" in failures["2"]["error"]
    assert "field 'admin': record.is_admin is 'Infinity'" in failures["3"]["error"]
    assert failures["3"]["error"].startswith("cannot build the document: ")
    doc = core.sinks.get("vet")
    assert doc["changes"]["dead"] == 3 and doc["changes"]["pending"] == 0
    # The default document carries the infinity as text: valid JSON, delivered.
    core.sinks.run_once("plain")
    assert core.sinks.get("plain")["changes"]["delivered"] == 4
    [plain3] = [r for r in receiver.log if r.id == "3" and "record" in r.document]
    assert plain3.document["record"]["is_admin"] == "Infinity"
    # A newer change of a dead record brings it back to life.
    table.edit(1, comment="3.5")
    core.sinks.run_once("vet")
    assert receiver.state["1"]["score"] == 3.5
    assert sorted(f["key"] for f in core.sinks.failures("vet")) == ["2", "3"]
