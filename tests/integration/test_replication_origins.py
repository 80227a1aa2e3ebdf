"""A change's origin is an instance id: 1-64 printable characters, the same rule
(``records.model.check_origin``) for a pushed batch, a pulled one and an import.
A change breaking it refuses its whole batch with a clear error, and nothing of the
batch is stored (on PostgreSQL a NUL could not even be written)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dataferry.errors import InvalidRequest, NotFound, PermanentError
from dataferry.records import exchange, hlc
from dataferry.records.transport import HttpTransport
from tests.support.answers import send_body

U = "8a5b6f0e-0d3e-4a43-9d8e-1b1f2b4c9a11"
V = "8a5b6f0e-0d3e-4a43-9d8e-1b1f2b4c9a12"
PEER = "peer-instance-id"
BAD_ORIGINS = ["a\nb", "x\x00y", "tab\there", "del\x7f", "zero\u200bwidth", "o" * 65, ""]


def change(uuid: str, origin: str, stamp_origin: str = PEER) -> dict[str, Any]:
    stamp = hlc.wall_ms() * hlc.SCALE
    return {"uuid": uuid, "origin": origin, "data": {"x": 1}, "meta": {"s": [stamp, stamp_origin]}}


def batch(changes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "protocol": 2,
        "collection": "obs",
        "source": PEER,
        "epoch": "e",
        "since": 0,
        "cursor": 10,
        "more": False,
        "changes": changes,
    }


def assert_nothing_stored(core: Any) -> None:
    with pytest.raises(NotFound):
        core.records.collection("obs")
    assert core.records.checkpoint("obs", PEER)["cursor"] == 0


@pytest.mark.parametrize("origin", BAD_ORIGINS)
def test_a_pushed_change_with_a_bad_origin_refuses_the_batch(core: Any, origin: str) -> None:
    doc = batch([change(V, PEER), change(U, origin)])
    for body in (json.dumps(doc).encode(), doc):  # REST's bytes; an RPC door's decoded batch
        with pytest.raises(InvalidRequest, match=r"change 1 \(.*\): origin must be an instance"):
            core.replication_protocol.push(body)
    assert_nothing_stored(core)


@pytest.mark.parametrize("origin", BAD_ORIGINS)
def test_a_stamp_with_a_bad_origin_refuses_the_batch(core: Any, origin: str) -> None:
    doc = batch([change(V, PEER), change(U, PEER, stamp_origin=origin)])
    with pytest.raises(InvalidRequest, match=r"change 1 \(.*\): stamp origin .* must be"):
        core.replication_protocol.push(json.dumps(doc).encode())
    assert_nothing_stored(core)


def test_printable_origins_up_to_64_characters_are_accepted(core: Any) -> None:
    doc = batch([change(U, "é" * 64, stamp_origin="ü" * 64), change(V, "peer b")])
    assert core.replication_protocol.push(json.dumps(doc).encode())["changed"] == 2
    assert core.records.get("obs", U).origin == "é" * 64


@pytest.mark.parametrize("source", BAD_ORIGINS)
def test_a_batch_from_a_bad_source_is_refused(core: Any, source: str) -> None:
    """The sender's instance id (stored with our checkpoint of its feed) too."""
    doc = {**batch([change(U, PEER)]), "source": source}
    with pytest.raises(InvalidRequest, match="source must be an instance id"):
        core.replication_protocol.push(json.dumps(doc).encode())
    with pytest.raises(NotFound):
        core.records.collection("obs")


class _Peer(BaseHTTPRequestHandler):
    """A peer (a real HTTP server) whose feed holds a change with a newline in its
    origin: an older or foreign instance that never checked it. ``/hello`` says
    ``instance_id``."""

    instance_id = PEER

    def do_GET(self) -> None:
        if self.path.startswith("/api/v1/replication/checkpoint"):
            self._answer({"cursor": 0})
        else:
            hello = {"protocol": 2, "instance_id": self.instance_id, "collections": ["obs"]}
            self._answer(hello)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self._answer({**batch([change(V, PEER), change(U, "peer\ninstance")]), "head": 10})

    def _answer(self, doc: dict[str, Any]) -> None:
        body = json.dumps(doc).encode()
        send_body(self, 200, body)

    def log_message(self, *args: Any) -> None:
        pass


class _Unnamed(_Peer):
    instance_id = "peer\ninstance"


EXPECTED = {
    _Peer: (InvalidRequest, r"change 1 \(.*\): origin must be an instance id"),
    _Unnamed: (PermanentError, r"the peer's instance id 'peer\\ninstance' is not one"),
}


@pytest.fixture(params=[_Peer, _Unnamed])
def bad_peer(request: pytest.FixtureRequest) -> Iterator[tuple[str, type[Exception], str]]:
    """(URL, error, message) of a peer with a bad origin or instance id."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), request.param)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield (f"http://127.0.0.1:{httpd.server_address[1]}", *EXPECTED[request.param])
    httpd.shutdown()
    httpd.server_close()


def test_a_pulled_change_with_a_bad_origin_fails_the_sync(
    core: Any, bad_peer: tuple[str, type[Exception], str]
) -> None:
    """Whether it is a change's origin or the peer's own instance id (as hello says it)."""
    url, error, message = bad_peer
    transport = HttpTransport(url, "")
    try:
        with pytest.raises(error, match=message):
            core.replication.sync_with(transport, ["obs"])
    finally:
        transport.close()
    assert_nothing_stored(core)


@pytest.mark.parametrize("origin", [o for o in BAD_ORIGINS if o])
def test_an_imported_row_with_a_bad_origin_is_rejected(core: Any, origin: str) -> None:
    """The same rule for an import (an empty origin there means a local write)."""
    rows = [{"uuid": U, "data": {"a": 1}, "hlc": 1, "origin": origin}, {"n": 1}]
    report = exchange.import_(core.records, "obs", "json", json.dumps(rows).encode()).document()
    assert (report["created"], report["rejected"]) == (1, 1), report
    assert "origin must be an instance id" in report["rejections"][0]["reason"]
