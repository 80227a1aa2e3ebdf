"""Bad replication input: malformed batches, unknown collections, a change stamped
too far in the future, gaps and protocol mismatches each get a clear error and
change nothing."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from dataferry.errors import Conflict, InvalidRequest, NotFound, PermanentError
from dataferry.records import hlc
from dataferry.records.service import render_batch
from dataferry.records.transport import HttpTransport
from dataferry.text import cut
from tests.support.answers import send_body

U = "8a5b6f0e-0d3e-4a43-9d8e-1b1f2b4c9a11"
PEER = "peer-instance-id"


def change(stamp: int, data: dict[str, Any] | None = None, uuid: str = U) -> dict[str, Any]:
    data = data or {"x": 1}
    return {
        "uuid": uuid,
        "origin": PEER,
        "data": data,
        "meta": {"f": {k: [stamp, PEER, 1] for k in data}},
    }


def batch(changes: list[Any], since: int = 0, cursor: int = 10, **over: Any) -> bytes:
    doc = {
        "protocol": 1,
        "collection": "obs",
        "source": PEER,
        "epoch": "e",
        "since": since,
        "cursor": cursor,
        "changes": changes,
        **over,
    }
    return json.dumps(doc).encode()


def now() -> int:
    return hlc.wall_ms() * hlc.SCALE


GOOD = change(0)
DEEP: Any = 0
for _ in range(150):
    DEEP = [DEEP]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "must be JSON"),
        (b"[]", "JSON object"),
        (batch([GOOD], protocol=99), "protocol"),
        (batch([GOOD], source=""), "source"),
        (batch("nope"), "changes must be a list"),  # type: ignore[arg-type]
        (batch([GOOD, 5]), "change 1: must be an object"),
        (batch([GOOD, {**GOOD, "uuid": "x"}]), "not a UUID"),
        (batch([GOOD, {**GOOD, "uuid": U + "\n"}]), "not a UUID"),
        (batch([GOOD, {**GOOD, "origin": ""}]), "origin"),
        (batch([GOOD, {**GOOD, "data": [1]}]), "must be objects"),
        (batch([GOOD, {**GOOD, "meta": {"f": {"x": [1]}}}]), "list of 3 or 5"),
        (batch([GOOD, {**GOOD, "meta": {"f": {}}}]), "without stamps"),
        (batch([GOOD, {**GOOD, "meta": {"f": {"x": [1, PEER, 1]}, "z": 1}}]), "unknown keys"),
        (batch([GOOD, {"uuid": U, "echo": 5}]), "echo"),
        (batch([GOOD], since=5, cursor=2), "cursor_to"),
        (batch([GOOD], collection="bad name"), "collection name"),
        # Limits a local write has (records.model): a peer's parser may be laxer.
        (batch([GOOD, {**GOOD, "data": {"x": DEEP}}]), "data nests deeper than 100"),
        (batch([GOOD, {**GOOD, "data": {"x": float("nan")}}]), "NaN is not a JSON number"),
        (batch([GOOD, {**GOOD, "data": {"x": -float("inf")}}]), "-Infinity is not a JSON"),
        (batch([GOOD, {**GOOD, "meta": {"f": {"x": [1, PEER, [[1]]]}}}]), "present must be 1 or 0"),
        (batch([GOOD, {**GOOD, "meta": {"f": {"x": [1, PEER, 1.0]}}}]), "present must be 1 or 0"),
        (batch([GOOD, {**GOOD, "data": {"x": "\ud800"}}]), "lone surrogate"),
    ],
)
def test_malformed_batches_change_nothing(core: Any, body: bytes, message: str) -> None:
    global GOOD
    GOOD = change(now())
    with pytest.raises(InvalidRequest, match=message):
        core.replication_protocol.push(body)
    with pytest.raises(NotFound):
        core.records.collection("obs")  # not even the collection was created
    assert core.records.checkpoint("obs", PEER)["cursor"] == 0


def test_changes_decoded_by_an_rpc_door_are_held_to_the_same_limits(core: Any) -> None:
    """JSON-RPC's and XML-RPC's parsers read NaN and Infinity; such a batch arrives
    decoded and is refused as a whole, before anything is written."""
    for bad in (float("nan"), float("inf"), DEEP):
        doc = json.loads(batch([change(now()), {**change(now()), "data": {"x": bad}}]))
        with pytest.raises(InvalidRequest, match=r"JSON numbers are finite|nests deeper"):
            core.replication_protocol.push(doc)
    with pytest.raises(NotFound):
        core.records.collection("obs")
    assert core.records.checkpoint("obs", PEER)["cursor"] == 0


def test_future_stamped_change_is_rejected_and_does_not_poison_the_clock(core: Any) -> None:
    core.records.put("obs", {"x": 0})
    before = core.records.store.clock()
    future = now() + 3600 * 1000 * hlc.SCALE  # an hour ahead; the bound is 300 s
    fine = change(now(), uuid="8a5b6f0e-0d3e-4a43-9d8e-1b1f2b4c9a12")
    with pytest.raises(InvalidRequest, match="in the future"):
        core.replication_protocol.push(batch([fine, change(future)]))
    assert core.records.store.clock() == before
    assert core.records.list("obs")[1] == 1
    assert core.records.put("obs", {"x": 1}).hlc < future


def test_gaps_are_refused_and_duplicates_ignored(core: Any) -> None:
    first = batch([change(now())], since=0, cursor=10)
    assert core.replication_protocol.push(first)["changed"] == 1
    again = core.replication_protocol.push(first)
    assert again["duplicate"] is True and again["changed"] == 0
    with pytest.raises(Conflict, match="missing"):
        core.replication_protocol.push(
            batch([change(now(), uuid="8a5b6f0e-0d3e-4a43-9d8e-1b1f2b4c9a13")], since=20, cursor=30)
        )
    assert core.records.list("obs")[1] == 1
    assert core.records.checkpoint("obs", PEER)["cursor"] == 10


def test_unknown_collection_and_own_batches(core: Any) -> None:
    with pytest.raises(NotFound):
        core.replication_protocol.pull(
            {"protocol": 1, "collection": "nope", "requester": PEER, "since": 0}
        )
    with pytest.raises(NotFound):
        core.records.changes("nope")
    own = {
        "protocol": 1,
        "collection": "obs",
        "source": core.records.instance_id,
        "since": 0,
        "cursor": 1,
        "changes": [],
    }
    with pytest.raises(InvalidRequest, match="itself"):
        core.replication_protocol.push(json.dumps(own).encode())
    assert render_batch({"a": 1}, []) == b'{"a":1,"changes":[]}'


def test_bad_input_over_rest(server: Any) -> None:
    url = f"{server.url}/api/v1/replication"
    r = httpx.post(f"{url}/push", content=b"{nope")
    assert r.status_code == 422 and "JSON" in r.json()["detail"]
    r = httpx.post(
        f"{url}/pull", json={"protocol": 1, "collection": "nope", "requester": "x", "since": 0}
    )
    assert r.status_code == 404
    future = now() + 3600 * 1000 * hlc.SCALE
    r = httpx.post(f"{url}/push", content=batch([change(future)]))
    assert r.status_code == 422 and "future" in r.json()["detail"]
    assert httpx.get(f"{server.url}/api/v1/collections").json()["collections"] == []


class _LaxPeer(BaseHTTPRequestHandler):
    """A peer whose JSON encoder writes NaN (Python's does): a real HTTP server."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        body = b'{"changes": [{"data": {"x": NaN}}], "cursor": 1, "more": false}'
        send_body(self, 200, body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_pulled_batch_holding_nan_is_a_permanent_error_naming_the_peer() -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _LaxPeer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    transport = HttpTransport(url, "")
    try:
        with pytest.raises(PermanentError, match=f"peer {url} answered .*NaN is not a JSON"):
            transport.pull("obs", PEER, 0, 10, 1 << 20)
    finally:
        transport.close()
        httpd.shutdown()
        httpd.server_close()


class _Greeter(BaseHTTPRequestHandler):
    """A peer whose ``/hello`` says ``hello`` (set per test): its own instance id and
    the rest as a test wants it."""

    hello: dict[str, Any] = {}

    def do_GET(self) -> None:
        doc = {"protocol": 2, "instance_id": PEER, "collections": [], **self.hello}
        send_body(self, 200, json.dumps(doc).encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("hello", "message"),
    [
        ({"owner": "Eve\x1b[2J"}, "owner 'Eve\\x1b[2J': not printable text"),
        ({"owner": "\u202eevil"}, "owner '\\u202eevil': not printable text"),
        ({"owner": "x" * 257}, f"owner {cut('x' * 257)!r}: longer than 256 characters"),
        ({"contact": "a@b\nForged: 1"}, "contact 'a@b\\nForged: 1': not printable text"),
        ({"contact": ["a@b"]}, "contact ['a@b']: not a string"),
        ({"epoch": "e" * 65}, f"epoch {cut('e' * 65)!r}: longer than 64 characters"),
        ({"epoch": 5}, "epoch 5: not a string"),
        ({"collections": "obs"}, "collections 'obs': not a list of collection names"),
        ({"collections": [{}]}, "collections [{}]: not a list of collection names"),
        ({"collections": ["../x"]}, "collections ['../x']: not a list of collection names"),
    ],
    ids=[
        "owner-escape", "owner-format", "owner-long", "contact-newline", "contact-list",
        "epoch-long", "epoch-number", "collections-string", "collections-object",
        "collections-bad-name",
    ],
)  # fmt: skip
def test_a_bad_hello_fails_the_sync_naming_the_peer_and_stores_nothing(
    core: Any, hello: dict[str, Any], message: str
) -> None:
    """Before, epoch, owner and contact were stored as str() of whatever came (the
    owner and contact of any length and with any character, printed later by `peer
    list`), and collections that were not a list of names were a TypeError."""
    handler = type("Greeter", (_Greeter,), {"hello": hello})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        core.peers.add("far", f"http://127.0.0.1:{httpd.server_address[1]}")
        expected = re.escape(f"peer 'far' said hello with {message}")
        with pytest.raises(PermanentError, match=expected):
            core.replication.sync("far")
    finally:
        httpd.shutdown()
        httpd.server_close()
    peer = core.peers.get("far").document()
    assert (peer["instance_id"], peer["epoch"], peer["owner"], peer["contact"]) == ("",) * 4
    assert peer["sync_count"] == 0 and peer["last_sync"] is None
    assert core.records.collection_names() == []
