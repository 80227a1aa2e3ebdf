"""Sinks through the front doors of a real ``dataferry serve``: REST and the CLI."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.receiver import ACCEPT, FAIL_500, Receiver
from tests.support.tables import AppTable, make_table, table_source
from tests.support.waiting import wait_for

FAST = {"DATAFERRY_SINK__LEASE_SECONDS": "2", "DATAFERRY_SINK__TICK_SECONDS": "0.05"}


@pytest.fixture
def table(tmp_path: Path) -> Iterator[AppTable]:
    yield from make_table("sqlite", tmp_path)


def test_rest_create_deliver_inspect_and_dead_letters(
    server_factory: Any, table: AppTable, receiver: Receiver
) -> None:
    srv = server_factory("a", FAST)
    for i in range(1, 6):
        table.insert(i)
    receiver.choose = lambda doc: FAIL_500 if doc["id"] == "3" else ACCEPT
    with httpx.Client(base_url=srv.url) as http:
        r = http.post(
            "/api/v1/sinks",
            json={
                "name": "vet",
                "source": table_source(table),
                "url": receiver.url,
                "retry_interval": 0.05,
                "retry_cap": 0.1,
                "give_up_after": 2,
                "api_key": "k-123",
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["api_key"] == "(set)" and "k-123" not in r.text
        # Delivered at once (a new sink is polled immediately), record 3 dead after 2 tries.
        wait_for(lambda: len(receiver.state) == 4, every=0.1)
        wait_for(lambda: http.get("/api/v1/sinks/vet").json()["changes"]["dead"] == 1, every=0.1)
        failures = http.get("/api/v1/sinks/vet/failures").json()["failures"]
        assert [f["key"] for f in failures] == ["3"] and "HTTP 500" in failures[0]["error"]
        assert 'dataferry_sink_delivered_total{sink="vet"} 4.0' in http.get("/metrics").text
        receiver.choose = lambda doc: ACCEPT
        assert http.post("/api/v1/sinks/vet/retry", json={"keys": ["3"]}).json()["requeued"] == 1
        wait_for(
            lambda: http.get("/api/v1/sinks/vet").json()["changes"]["delivered"] == 5, every=0.1
        )
        assert "3" in receiver.state
        doc = http.get("/api/v1/sinks/vet").json()
        assert doc["changes"] == {
            "pending": 0,
            "retrying": 0,
            "in_flight": 0,
            "delivered": 5,
            "dead": 0,
            "dropped": 0,
            "waiting_for_other_sinks": 0,
        }
        # Pause: a change waits; resume: it goes.
        assert http.post("/api/v1/sinks/vet/pause").json()["state"] == "paused"
        table.edit(1, comment="while paused")
        http.post("/api/v1/sinks/vet/poll")
        time.sleep(0.5)
        assert receiver.state["1"]["record"]["comment"] == ""
        assert http.post("/api/v1/sinks/vet/resume").json()["state"] == "active"
        wait_for(lambda: receiver.state["1"]["record"]["comment"] == "while paused", every=0.1)
        assert http.delete("/api/v1/sinks/vet").status_code == 204
        assert http.get("/api/v1/sinks/vet").status_code == 404


def test_rest_bad_input_is_refused_with_what_is_missing(server: Any, table: AppTable) -> None:
    with httpx.Client(base_url=server.url) as http:
        source = table_source(table)
        source["table"]["deleted"] = "removed_at"
        r = http.post("/api/v1/sinks", json={"name": "x", "source": source, "url": ""})
        assert r.status_code == 422 and "deleted column 'removed_at'" in r.json()["detail"]
        r = http.post("/api/v1/sinks", json={"name": "x", "source": {"collection": "nope"}})
        assert r.status_code == 422 and "collection 'nope'" in r.json()["detail"]
        r = http.post("/api/v1/sinks", json={"name": "x", "url": "http://a/"})
        assert r.status_code == 422 and "source" in r.json()["detail"]
        r = http.post("/api/v1/sinks", json=[1, 2])
        assert r.status_code == 422
        r = http.post(
            "/api/v1/sinks",
            json={"name": "x", "source": table_source(table), "mapping": {"fields": {"a": "b"}}},
        )
        assert r.status_code == 422 and "'b' is not a known value" in r.json()["detail"]
        assert http.get("/api/v1/sinks").json() == {"sinks": []}


def test_cli_add_list_show_pause_failures_retry_remove(
    server_factory: Any, table: AppTable, receiver: Receiver, tmp_path: Path
) -> None:
    srv = server_factory("a", FAST)
    table.insert(1)
    out = srv.cli_json(
        "sink", "add", "vet", "--table", table.name, "--table-url", table.url,
        "--retry-interval", "0.05", "--retry-cap", "0.1", "--give-up-after", "1",
    )  # fmt: skip
    assert out["state"] == "idle" and out["idle_reason"] == "no target URL configured"
    listing = srv.cli("sink", "list", env_columns=200).stdout
    assert "idle: no target URL configured" in listing
    receiver.choose = lambda doc: FAIL_500
    srv.cli("sink", "set", "vet", "--url", receiver.url)
    wait_for(lambda: srv.cli_json("sink", "show", "vet")["changes"]["dead"] == 1, every=0.1)
    failures = srv.cli_json("sink", "failures", "vet")
    assert failures[0]["key"] == "1"
    assert "HTTP 500" in srv.cli("sink", "failures", "vet").stdout
    receiver.choose = lambda doc: ACCEPT
    assert "1 change(s) re-queued" in srv.cli("sink", "retry", "vet").stdout
    wait_for(lambda: "1" in receiver.state, every=0.1)
    shown = srv.cli("sink", "show", "vet").stdout
    assert "delivered_total: 1" in shown
    srv.cli("sink", "pause", "vet")
    assert srv.cli_json("sink", "show", "vet")["state"] == "paused"
    srv.cli("sink", "resume", "vet")
    srv.cli("sink", "remove", "vet")
    assert srv.cli_json("sink", "list") == []
    bad = srv.cli("sink", "show", "vet", check=False)
    assert bad.returncode == 1 and "does not exist" in bad.stderr
    bad = srv.cli("sink", "add", "y", "--collection", "c", "--table", "t", check=False)
    assert bad.returncode == 1 and "exactly one source" in bad.stderr


def test_config_file_sinks_are_created_at_start(
    database_url: str, table: AppTable, receiver: Receiver, tmp_path: Path
) -> None:
    from tests.support.server import Server

    table.insert(1)
    config = tmp_path / "dataferry.toml"
    config.write_text(
        f"""
[[sinks]]
name = "from-config"
url = "{receiver.url}"
api_key = "cfg-key"
retry_interval = 0.05
retry_cap = 0.1

[sinks.source.table]
url = "{table.url}"
name = "{table.name}"
key = "id"
modified = "modified"
deleted = "deleted"
last_sync = "last_sync"
"""
    )
    srv = Server(tmp_path / "home", database_url, FAST)
    srv.env["DATAFERRY_CONFIG"] = str(config)
    srv.start()
    try:
        wait_for(lambda: "1" in receiver.state, every=0.1)
        with srv.client() as c:
            [doc] = c.sinks()
        assert doc["origin"] == "config" and doc["api_key"] == "(set)"
    finally:
        srv.kill()


def test_definitions_that_could_never_be_sent_are_refused(server: Any, table: AppTable) -> None:
    """Before, these were stored and failed later: a port out of range, a space or NUL in
    the URL, a host name with an empty or over-long label (as peer and site URLs are
    checked), and a header HTTP cannot carry failed every send ("internal error"); a
    timeout or retry wait of 1e308 (or Infinity, which Python's JSON parser reads)
    overflowed the daemon's lease and retry arithmetic, so the sink never polled or
    never recorded an outcome; NUL in a table's URL was a 500. Now each is a 422 naming
    the field, on add and on change, and nothing is stored."""
    good = {"name": "ok", "source": table_source(table), "url": "http://127.0.0.1:9/"}
    nul_url = table_source(table)
    nul_url["table"]["url"] += "\x00"
    sqlite_nul = table_source(table)  # %00 decodes to a NUL in the file name: was a 500
    sqlite_nul["table"]["url"] = "sqlite:///app%00.db"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"url": "http://127.0.0.1:99999/"}, "port 99999 is not between 1 and 65535"),
        ({"url": "http://127.0.0.1:0/"}, "port 0 is not between 1 and 65535"),
        ({"url": "http://127.0.0.1:+80/"}, "port '+80' is not a number"),
        ({"url": "http://[::1/"}, "must be http(s)://HOST[:PORT][/PATH]: Invalid IPv6 URL"),
        ({"url": "ftp://x/"}, "must start with http:// or https://"),
        ({"url": "http://a b/"}, "a space or a control character"),
        ({"url": "http://x/\x00"}, "a space or a control character"),
        # the same rules as peer and site URLs (these were stored, to fail every send)
        ({"url": "http://x/\u200b"}, "a space or a control character"),
        ({"url": "https://a..b.example/in"}, "'a..b.example' has an empty or too long label"),
        ({"url": f"https://{'a' * 64}.example/"}, "has an empty or too long label"),
        ({"headers": {"X": "a\nb"}}, "header X"),
        ({"headers": {"X": "é"}}, "header X"),
        ({"headers": {"X": "{api_key}"}, "api_key": "k\r\n"}, "header X"),
        ({"headers": {"": "a"}}, "not a valid HTTP header name"),
        ({"headers": {"X Y:": "a"}}, "not a valid HTTP header name"),
        # a pattern's $ matches before a final newline: names and headers match whole
        ({"headers": {"X\n": "a"}}, "not a valid HTTP header name"),
        ({"headers": {"X": "a\n"}}, "header X"),
        ({"source": {"collection": "c\n"}}, "collection"),
        ({"timeout": 1e308}, "timeout: Input should be less than or equal to 31536000"),
        ({"retry_interval": 1e300, "retry_cap": 1e308}, "retry_interval"),
        ({"poll_interval": 1e308}, "poll_interval"),
        ({"source": nul_url}, "NUL"),
        ({"source": sqlite_nul}, "is not usable"),
    ]
    with httpx.Client(base_url=server.url) as http:
        for change, message in cases:
            r = http.post("/api/v1/sinks", json={**good, **change})
            assert r.status_code == 422 and message in r.json()["detail"], (change, r.text)
        for field in ("poll_interval", "timeout", "retry_cap"):
            raw = '{"name": "x", "source": {"collection": "c"}, "' + field + '": Infinity}'
            r = http.post(
                "/api/v1/sinks", content=raw, headers={"content-type": "application/json"}
            )
            assert r.status_code == 422 and "finite" in r.json()["detail"], (field, r.text)
        r = http.post("/api/v1/sinks", json={**good, "name": "ok\n"})
        assert r.status_code == 422 and "sink name" in r.json()["detail"], r.text
        assert http.get("/api/v1/sinks").json() == {"sinks": []}

        created = http.post("/api/v1/sinks", json=good)
        assert created.status_code == 201, created.text
        for change, message in cases:
            r = http.patch("/api/v1/sinks/ok", json=change)
            assert r.status_code == 422 and message in r.json()["detail"], (change, r.text)
        after = http.get("/api/v1/sinks/ok").json()
        assert after["updated"] == created.json()["updated"]
        assert after["url"] == good["url"] and after["timeout"] == 30.0


def test_durations_below_a_hundredth_of_a_second_are_refused(server: Any, table: AppTable) -> None:
    """A retry_interval, retry_cap, poll_interval or timeout of 1e-300 s was stored and
    made the daemon retry or poll in a loop that never slept. Now each is a 422 naming
    the field, on add and on change; 0.01 s, the minimum, is taken."""
    good = {"name": "ok", "source": table_source(table), "url": "http://127.0.0.1:9/"}
    cases: list[dict[str, Any]] = [
        {"retry_interval": 1e-300},
        {"retry_interval": 0.001, "retry_cap": 0.001},
        {"retry_cap": 0.009, "retry_interval": 0.005},
        {"poll_interval": 1e-300},
        {"timeout": 0.0099},
        {"timeout": 0},
    ]
    with httpx.Client(base_url=server.url) as http:
        for change in cases:
            r = http.post("/api/v1/sinks", json={**good, **change})
            field = next(iter(change))
            expected = f"{field}: Input should be greater than or equal to 0.01"
            assert r.status_code == 422 and expected in r.json()["detail"], (change, r.text)
        assert http.get("/api/v1/sinks").json() == {"sinks": []}
        created = http.post("/api/v1/sinks", json=good)
        assert created.status_code == 201, created.text
        for change in cases:
            r = http.patch("/api/v1/sinks/ok", json=change)
            assert r.status_code == 422 and "greater than or equal to 0.01" in r.text, r.text
        after = http.get("/api/v1/sinks/ok").json()
        assert after["updated"] == created.json()["updated"]
        least = {"retry_interval": 0.01, "retry_cap": 0.01, "poll_interval": 0.01, "timeout": 0.01}
        r = http.patch("/api/v1/sinks/ok", json=least)
        assert r.status_code == 200, r.text
        assert {k: r.json()[k] for k in least} == least


def test_a_sink_stored_by_an_older_version_with_values_now_refused_can_be_mended(
    server_factory: Any, database_url: str, table: AppTable, receiver: Receiver
) -> None:
    """Rows written before definitions were checked as strictly (a port out of range,
    a timeout of 1e308, a retry wait of 1e-300, Infinity stored as null) made a PATCH
    a 500, even one mending the value. Now listing, showing and the dashboard say why
    the sink is idle, a PATCH that leaves a bad value is a 422 changing nothing, one
    that mends it is taken (and the sink delivers), and DELETE works."""
    from dataferry.db.engine import Database
    from dataferry.db.models.sinks import SinkRow

    srv = server_factory("a", FAST)
    table.insert(1)
    old = {
        "source": table_source(table),
        "url": receiver.url,
        "api_key": "k-1",
        "headers": {"X-Key": "{api_key}"},
        "mapping": {"fields": {"id": "id", "key": "apiKey"}},
        "paused": True,  # until the row is made bad: nothing is sent before
    }
    bad_url = "http://127.0.0.1:99999/"
    bad = {"url": bad_url, "timeout": 1e308, "retry_interval": 1e-300, "poll_interval": None}
    db = Database(database_url)
    with httpx.Client(base_url=srv.url) as http:
        table.add_column("gone_sync")  # each sink sets its own last_sync column
        for name, last_sync in (("old", "last_sync"), ("gone", "gone_sync")):
            source = table_source(table, last_sync=last_sync)
            r = http.post("/api/v1/sinks", json={**old, "name": name, "source": source})
            assert r.status_code == 201, r.text
        with db.session() as s:  # what an older version could have stored
            for row in s.query(SinkRow):
                row.spec = {**row.spec, **bad, "paused": False}
                row.url, row.paused = bad_url, False
        with db.read() as s:
            stored = {r.name: (dict(r.spec), r.url, r.secrets, r.updated) for r in s.query(SinkRow)}

        listed = http.get("/api/v1/sinks")
        assert listed.status_code == 200, listed.text
        for doc in listed.json()["sinks"]:
            assert doc["state"] == "idle", doc
            for field in ("url", "timeout", "retry_interval", "poll_interval"):
                assert f"{field}: " in doc["idle_reason"], (field, doc["idle_reason"])
        shown = http.get("/api/v1/sinks/old")
        assert shown.status_code == 200 and shown.json()["timeout"] == 1e308
        for page in ("/sinks", "/sinks/old"):
            html = http.get(page, headers={"Accept": "text/html"})
            assert html.status_code == 200 and "definition no longer valid" in html.text, page

        # A change leaving a bad value (or adding one) is a 422 naming it; nothing moves.
        for change, message in [
            ({"concurrency": 2}, "url: Value error, target URL"),
            ({"timeout": 10, "retry_interval": 1, "poll_interval": 60}, "port 99999"),
            ({"url": receiver.url, "timeout": 10, "poll_interval": 60}, "retry_interval: "),
            ({"url": receiver.url, "timeout": 10, "retry_interval": 1}, "poll_interval: "),
            (
                {"url": receiver.url, "timeout": -1, "retry_interval": 1, "poll_interval": 60},
                "timeout: Input should be greater than or equal to 0.01",
            ),
        ]:
            r = http.patch("/api/v1/sinks/old", json=change)
            assert r.status_code == 422 and message in r.json()["detail"], (change, r.text)
        with db.read() as s:
            row = s.query(SinkRow).filter_by(name="old").one()
            assert (dict(row.spec), row.url, row.secrets, row.updated) == stored["old"]

        # A change mending every bad value is taken; headers, key and mapping are kept.
        fix = {"url": receiver.url, "timeout": 10, "retry_interval": 0.05, "poll_interval": 60}
        r = http.patch("/api/v1/sinks/old", json=fix)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["state"] == "active" and doc["idle_reason"] == ""
        assert doc["api_key"] == "(set)" and doc["headers"] == {"X-Key": "(set)"}
        wait_for(lambda: "1" in receiver.state, every=0.1)
        assert receiver.state["1"] == {"id": "1", "key": "k-1"}
        assert receiver.headers[-1]["x-key"] == "k-1"

        assert http.delete("/api/v1/sinks/gone").status_code == 204
        assert http.get("/api/v1/sinks/gone").status_code == 404
        assert [d["name"] for d in http.get("/api/v1/sinks").json()["sinks"]] == ["old"]
    db.engine.dispose()


def test_a_paused_sink_stored_by_an_older_version_shows_its_problem(
    server_factory: Any, database_url: str, table: AppTable
) -> None:
    """A paused sink whose stored definition is no longer valid showed only "paused":
    nothing said that resuming it would not deliver. Now its state is still "paused"
    and its idle_reason (REST, CLI list, dashboard list) names the problem; once
    mended, a paused sink says "paused" again."""
    from dataferry.db.engine import Database
    from dataferry.db.models.sinks import SinkRow

    srv = server_factory("a", FAST)
    good = {"name": "old", "source": table_source(table), "url": "http://127.0.0.1:9/"}
    db = Database(database_url)
    with httpx.Client(base_url=srv.url) as http:
        r = http.post("/api/v1/sinks", json={**good, "paused": True})
        assert r.status_code == 201 and r.json()["idle_reason"] == "paused", r.text
        with db.session() as s:  # what an older version could have stored
            row = s.query(SinkRow).filter_by(name="old").one()
            row.spec = {**row.spec, "timeout": 1e308}
        problem = "definition no longer valid, change it: timeout: Input should be less than"
        for doc in (
            http.get("/api/v1/sinks/old").json(),
            *http.get("/api/v1/sinks").json()["sinks"],
        ):
            assert doc["state"] == "paused" and doc["paused"] is True, doc
            assert doc["idle_reason"].startswith(problem), doc
        assert problem in http.get("/sinks", headers={"Accept": "text/html"}).text
        assert "definition no longer valid" in srv.cli("sink", "list", env_columns=400).stdout
        mended = http.patch("/api/v1/sinks/old", json={"timeout": 10})
        assert mended.status_code == 200, mended.text
        assert (mended.json()["state"], mended.json()["idle_reason"]) == ("paused", "paused")
    db.engine.dispose()
