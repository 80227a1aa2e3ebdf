"""``GET /api/v1/peer/hello``: what the peer file protocol of an instance accepts
beyond its base, asked by a ``dataferry://`` filesystem once, at its first write that
would carry an optional field, however many threads copy through it."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from dataferry.datasets.peer import PeerClient
from dataferry.datasets.peerfs import PeerFileSystem
from dataferry.datasets.sites import SiteAccess
from tests.integration.test_mtime import OLD, mtime
from tests.support.pair import TOKEN
from tests.support.server import Server

HELLO = "/api/v1/peer/hello"


@pytest.fixture
def host(server_factory: Any, tmp_path: Path) -> tuple[Server, Path]:
    """One server (site 'home') with site 'fac' registered, which may write 'shared'."""
    shared = tmp_path / "shared"
    shared.mkdir()
    srv: Server = server_factory("host", env={"DATAFERRY_DATASETS__SITE_NAME": "home"})
    srv.cli("endpoint", "add", "shared", str(shared), "-o", "peer_write=fac")
    srv.cli("site", "add", "fac", "http://127.0.0.1:9", "--token", TOKEN, "--role", "provider")
    return srv, shared


def test_hello_says_protocol_and_features_to_a_site_only(host: tuple[Server, Path]) -> None:
    srv, _ = host
    site = {"X-Dataferry-Site": "fac"}
    r = httpx.get(srv.url + HELLO, headers={**site, "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert r.json() == {"protocol": 1, "features": ["mtime"]}
    # as every peer route: no token, a wrong one, an unknown site or none named is 403
    for headers in (
        site,
        {**site, "Authorization": "Bearer wrong-token-0123456789"},
        {"X-Dataferry-Site": "nobody", "Authorization": f"Bearer {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}"},
    ):
        r = httpx.get(srv.url + HELLO, headers=headers)
        assert r.status_code == 403, (headers, r.text)
        assert "features" not in r.text


class Counted:
    """A ``dataferry://`` filesystem onto ``srv``'s endpoint 'shared' (as site 'fac'),
    counting the requests it sends by target path."""

    def __init__(self, srv: Server) -> None:
        self.sent: list[str] = []
        self._lock = threading.Lock()
        client = PeerClient(SiteAccess("home", srv.url, TOKEN), "fac")
        client.http.event_hooks["request"] = [self._count]
        self.fs = PeerFileSystem("home", "shared", client)

    def _count(self, request: httpx.Request) -> None:
        with self._lock:
            self.sent.append(request.url.path)

    def hellos(self) -> int:
        with self._lock:
            return self.sent.count(HELLO)

    def close(self) -> None:
        self.fs.client.close()


def put(fs: PeerFileSystem, rel: str, data: bytes, when: int | None) -> None:
    """Write ``rel`` as a transfer does: to a temporary name, then put in place (a
    small file: held back and sent by the commit, ``PUT`` with ``commit``)."""
    upload = f"/{rel}.1.dftmp"
    with fs.open(upload, "wb") as f:
        f.write(data)
    if when is not None:
        fs.note_mtime(upload, when)
    fs.commit(upload, f"/{rel}", len(data), durable=False)


def test_hello_is_asked_once_per_filesystem_by_parallel_writers(
    host: tuple[Server, Path],
) -> None:
    srv, shared = host
    counted = Counted(srv)
    try:
        # writes that carry no optional field need no hello
        put(counted.fs, "plain/x.bin", b"x", None)
        assert counted.hellos() == 0 and (shared / "plain" / "x.bin").read_bytes() == b"x"

        n = 16
        start = threading.Barrier(n)
        errors: list[BaseException] = []

        def writer(i: int) -> None:
            try:
                start.wait()
                if i % 2:  # half as a batch, half one by one
                    upload = f"/par/.b{i}.1.dftmp"
                    with counted.fs.open(upload, "wb") as f:
                        f.write(b"b%d" % i)
                    counted.fs.note_mtime(upload, OLD + i)
                    counted.fs.put_batch([(upload, f"/par/b{i}", len(b"b%d" % i))])
                else:
                    put(counted.fs, f"par/p{i}", b"p%d" % i, OLD + i)
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert counted.hellos() == 1, counted.sent
        assert counted.sent.index(HELLO) == 1  # after the plain write, before any timed one
        for i in range(n):
            name = f"b{i}" if i % 2 else f"p{i}"
            assert mtime(shared / "par" / name) == OLD + i, name
        put(counted.fs, "par/later", os.urandom(10), OLD)
        assert counted.hellos() == 1  # kept for the filesystem's life
    finally:
        counted.close()
    # another filesystem (another transfer) asks again: the peer may have been upgraded
    other = Counted(srv)
    try:
        put(other.fs, "again/y", b"y", OLD)
        assert other.hellos() == 1 and mtime(shared / "again" / "y") == OLD
    finally:
        other.close()


def test_a_failed_hello_is_not_taken_for_an_older_peer(host: tuple[Server, Path]) -> None:
    """A hello the peer cannot answer (it is down) fails the write as any request would
    (transient: retried), and is not kept: once the peer is back, the next write asks
    again and sends the time."""
    from dataferry.errors import TransientError

    srv, shared = host
    counted = Counted(srv)
    try:
        srv.kill()
        with pytest.raises(TransientError):
            put(counted.fs, "t/a", b"a", OLD)
        assert counted.sent == [HELLO]  # it failed at the hello: nothing else was sent
        srv.start()
        put(counted.fs, "t/a", b"a", OLD)
        assert counted.hellos() == 2 and mtime(shared / "t" / "a") == OLD
    finally:
        counted.close()
