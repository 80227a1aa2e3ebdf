"""The peer file protocol against a real server: list, stat, ranged GET, upload to a
temporary name with resume, commit, delete; per-endpoint peer permissions; and the
``dataferry://`` filesystem used by ordinary transfers between two instances."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from dataferry.datasets.peer import PeerClient
from dataferry.datasets.peerfs import BATCH_TYPE, PeerEndpointFS, PeerFileSystem, batch_body
from dataferry.datasets.sites import SiteAccess
from tests.support.pair import PROVIDER, TOKEN, make_pair
from tests.support.server import Server
from tests.support.trees import hash_tree, make_tree, temporaries

PEER = {"Authorization": f"Bearer {TOKEN}", "X-Dataferry-Site": "fac"}


@pytest.fixture
def host(server_factory: Any, tmp_path: Path) -> tuple[Server, Path]:
    """One server with site 'fac' registered and two endpoints: 'shared' (fac may read
    and write) and 'private' (no peer may use it)."""
    shared, private = tmp_path / "shared", tmp_path / "private"
    shared.mkdir()
    private.mkdir()
    srv: Server = server_factory("host", env={"DATAFERRY_DATASETS__SITE_NAME": "home"})
    srv.cli("endpoint", "add", "shared", str(shared), "-o", "peer_read=fac", "-o", "peer_write=fac")
    srv.cli("endpoint", "add", "private", str(private))
    srv.cli("site", "add", "fac", "http://127.0.0.1:9", "--token", TOKEN, "--role", "provider")
    return srv, shared


def api(srv: Server) -> httpx.Client:
    return httpx.Client(base_url=f"{srv.url}/api/v1/peer/endpoints", headers=PEER, timeout=30)


def test_list_stat_and_ranged_reads(host: tuple[Server, Path]) -> None:
    srv, shared = host
    (shared / "a" / "b").mkdir(parents=True)
    data = os.urandom(100_000)
    (shared / "a" / "b" / "f.bin").write_bytes(data)
    (shared / "top.txt").write_bytes(b"hello")
    with api(srv) as c:
        top = c.get("/shared/list", params={"path": ""}).json()["entries"]
        assert [(e["path"], e["type"]) for e in top] == [("a", "directory"), ("top.txt", "file")]
        deep = c.get("/shared/list", params={"path": "", "recursive": "true"}).json()["entries"]
        assert {e["path"] for e in deep} == {"a", "a/b", "a/b/f.bin", "top.txt"}
        st = c.get("/shared/stat", params={"path": "a/b/f.bin"}).json()
        when = (shared / "a" / "b" / "f.bin").stat().st_mtime_ns
        assert st == {"path": "a/b/f.bin", "type": "file", "size": 100_000, "mtime": when}
        assert c.get("/shared/stat", params={"path": "nope"}).status_code == 404
        whole = c.get("/shared/files", params={"path": "a/b/f.bin"})
        assert whole.status_code == 200 and whole.content == data
        part = c.get(
            "/shared/files", params={"path": "a/b/f.bin"}, headers={"Range": "bytes=1000-1999"}
        )
        assert part.status_code == 206 and part.content == data[1000:2000]
        assert part.headers["content-range"] == "bytes 1000-1999/100000"
        tail = c.get(
            "/shared/files", params={"path": "a/b/f.bin"}, headers={"Range": "bytes=99990-"}
        )
        assert tail.content == data[99990:]
        # a start past the end, even past 64 bits, is 416 (it was a 500: an overflow in seek)
        for start in (100_000, 2**64, 10**20):
            past = c.get(
                "/shared/files", params={"path": "a/b/f.bin"}, headers={"Range": f"bytes={start}-"}
            )
            assert past.status_code == 416, past.text
            assert past.headers["content-range"] == "bytes */100000"
        assert c.get("/shared/files", params={"path": "../etc/passwd"}).status_code == 422


def test_a_name_that_is_not_utf8_is_refused_by_name_not_a_server_error(
    host: tuple[Server, Path],
) -> None:
    """A listing that meets a file whose name is not UTF-8 says which (before: 500,
    the answer could not be encoded)."""
    srv, shared = host
    (shared / "d").mkdir()
    (shared / "d" / "ok.txt").write_bytes(b"ok")
    with open(os.fsencode(shared) + b"/d/caf\xe9.txt", "wb") as f:
        f.write(b"latin-1 name")
    with api(srv) as c:
        for params in ({"path": "d"}, {"path": "", "recursive": "true"}):
            answer = c.get("/shared/list", params=params)
            assert answer.status_code == 422, answer.text
            assert "'d/caf\\udce9.txt' on endpoint 'shared'" in answer.json()["detail"]
            assert "not valid UTF-8" in answer.json()["detail"]


def test_upload_to_temporary_resume_commit_delete(host: tuple[Server, Path]) -> None:
    srv, shared = host
    data = os.urandom(3 * 1024 * 1024 + 17)
    tmp = "in/.x.bin.1.dftmp"
    with api(srv) as c:
        # only temporary names take uploads: nothing half-written under a final name
        r = c.put("/shared/uploads", params={"path": "in/x.bin"}, content=data)
        assert r.status_code == 422 and not (shared / "in" / "x.bin").exists()
        assert (
            c.put("/shared/uploads", params={"path": tmp}, content=data[:1_000_000]).json()["size"]
            == 1_000_000
        )
        assert c.get("/shared/uploads", params={"path": tmp}).json()["size"] == 1_000_000
        # resuming at the wrong offset is refused and changes nothing
        wrong = c.put("/shared/uploads", params={"path": tmp, "offset": 5}, content=b"zz")
        assert wrong.status_code == 409 and "1000000" in wrong.json()["detail"]
        assert (shared / tmp).stat().st_size == 1_000_000
        r = c.put(
            "/shared/uploads", params={"path": tmp, "offset": 1_000_000}, content=data[1_000_000:]
        )
        assert r.json()["size"] == len(data)
        bad = c.post("/shared/commit", json={"upload": tmp, "path": "in/x.bin", "size": 12})
        assert bad.status_code == 409 and not (shared / "in" / "x.bin").exists()
        ok = c.post("/shared/commit", json={"upload": tmp, "path": "in/x.bin", "size": len(data)})
        assert ok.status_code == 200, ok.text
        assert (shared / "in" / "x.bin").read_bytes() == data and not (shared / tmp).exists()
        assert c.post("/shared/folders", params={"path": "made/deep"}).status_code == 201
        assert (shared / "made" / "deep").is_dir()
        assert c.delete("/shared/files", params={"path": "in/x.bin"}).status_code == 204
        assert not (shared / "in" / "x.bin").exists()


def test_batch_upload_writes_syncs_checks_and_renames(host: tuple[Server, Path]) -> None:
    srv, shared = host
    a, b = os.urandom(1000), os.urandom(70_000)
    files = [
        {"upload": "x/.a.bin.1.dftmp", "path": "x/a.bin", "size": len(a), "data": True},
        {"upload": "x/y/.b.bin.1.dftmp", "path": "x/y/b.bin", "size": len(b), "data": True},
    ]
    headers = {"Content-Type": BATCH_TYPE}
    with api(srv) as c:
        r = c.post("/shared/uploads/batch", content=batch_body(files, [a, b]), headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["committed"] == ["x/a.bin", "x/y/b.bin"]
        assert (shared / "x" / "a.bin").read_bytes() == a
        assert (shared / "x" / "y" / "b.bin").read_bytes() == b
        assert temporaries(shared) == []
        # data that does not add up to the sizes given: refused, nothing in place
        files[0]["path"], files[1]["path"] = "z/a.bin", "z/b.bin"
        short = c.post("/shared/uploads/batch", content=batch_body(files, [a]), headers=headers)
        assert short.status_code == 422 and not (shared / "z").exists()
        junk = c.post("/shared/uploads/batch", content=b"\xff\xff\xff\xffjunk", headers=headers)
        assert junk.status_code == 422
        # a header claiming to be huge is refused before it is waited for
        huge = c.post("/shared/uploads/batch", content=b"\x7f\xff\xff\xffjunk", headers=headers)
        assert huge.status_code == 422 and "at most" in huge.text
        # only temporary names take bytes
        final = [{**files[0], "upload": "z/a.bin"}]
        r = c.post("/shared/uploads/batch", content=batch_body(final, [a]), headers=headers)
        assert r.status_code == 422 and not (shared / "z" / "a.bin").exists()


def pieces(body: bytes, size: int) -> Any:
    """``body`` sent chunked (no Content-Length), so the server learns its length only
    as it arrives."""
    for i in range(0, len(body), size):
        yield body[i : i + size]


def test_batch_upload_streamed_in_small_chunks(host: tuple[Server, Path]) -> None:
    srv, shared = host
    a, b = os.urandom(300_000), os.urandom(5_000_000)
    files = [
        {"upload": "s/.a.bin.1.dftmp", "path": "s/a.bin", "size": len(a), "data": True},
        {"upload": "s/e/.empty.1.dftmp", "path": "s/e/empty", "size": 0, "data": True},
        {"upload": "s/d/.b.bin.1.dftmp", "path": "s/d/b.bin", "size": len(b), "data": True},
        {"upload": "s/.z.1.dftmp", "path": "s/z", "size": 0, "data": True},
    ]
    headers = {"Content-Type": BATCH_TYPE}
    with api(srv) as c:
        body = batch_body(files, [a, b])
        r = c.post("/shared/uploads/batch", content=pieces(body, 7_000), headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["committed"] == ["s/a.bin", "s/e/empty", "s/d/b.bin", "s/z"]
        assert (shared / "s" / "a.bin").read_bytes() == a
        assert (shared / "s" / "d" / "b.bin").read_bytes() == b
        assert (shared / "s" / "e" / "empty").read_bytes() == b""
        assert (shared / "s" / "z").read_bytes() == b""
        assert temporaries(shared) == []
        # cut short, or longer than the sizes: refused, and what it wrote is removed
        moved = [{**f, "upload": f"t/{f['upload']}", "path": f"t/{f['path']}"} for f in files]
        whole = batch_body(moved, [a, b])
        for bad in (whole[:-1000], whole + b"extra"):
            r = c.post("/shared/uploads/batch", content=pieces(bad, 64_000), headers=headers)
            assert r.status_code == 422, r.text
            assert not (shared / "t").exists()


def test_endpoint_permissions(host: tuple[Server, Path], tmp_path: Path) -> None:
    srv, _shared = host
    (tmp_path / "private" / "secret.txt").write_bytes(b"s")
    srv.cli("endpoint", "add", "readonly", str(tmp_path / "private"), "-o", "peer_read=*")
    with api(srv) as c:
        for ep in ("private", "missing"):
            r = c.get(f"/{ep}/stat", params={"path": "secret.txt"})
            assert r.status_code == 403, r.text  # the same answer: existence is not told
        assert c.get("/readonly/files", params={"path": "secret.txt"}).content == b"s"
        r = c.put("/readonly/uploads", params={"path": ".n.1.dftmp"}, content=b"x")
        assert r.status_code == 403
        assert c.delete("/readonly/files", params={"path": "secret.txt"}).status_code == 403
    assert (tmp_path / "private" / "secret.txt").read_bytes() == b"s"
    assert not (tmp_path / "private" / ".n.1.dftmp").exists()


def test_names_the_file_system_refuses_are_invalid_not_server_errors(
    host: tuple[Server, Path],
) -> None:
    """A name longer than the file system allows, or a folder where a file is, is the
    peer's mistake: 422 (which its client does not retry), never a 500."""
    srv, shared = host
    (shared / "f.txt").write_bytes(b"hello")
    too_long = "x" * 300
    with api(srv) as c:
        for answer in [  # reading: no such file can exist
            c.get("/shared/stat", params={"path": too_long}),
            c.get("/shared/list", params={"path": too_long}),
            c.get("/shared/files", params={"path": too_long}),
        ]:
            assert answer.status_code in (404, 422), (answer.request.url, answer.text)
        for answer in [  # writing: refused
            c.post("/shared/folders", params={"path": f"{too_long}/d"}),
            c.put("/shared/uploads", params={"path": f".{too_long}.1.dftmp"}, content=b"x"),
            c.post("/shared/folders", params={"path": "f.txt/d"}),  # a file in the way
            # deeper than the recursion os.makedirs takes one level at a time (was a 500)
            c.post("/shared/folders", params={"path": "a/" * 3000}),
        ]:
            assert answer.status_code == 422, (answer.request.url, answer.text)
            assert answer.json()["error"] == "invalid"
        assert c.get("/shared/stat", params={"path": "f.txt"}).json()["size"] == 5
    assert sorted(p.name for p in shared.iterdir()) == ["f.txt"]


def test_a_path_below_a_file_does_not_exist_and_the_answer_names_it(
    host: tuple[Server, Path],
) -> None:
    """stat, list, read and delete of 'f.txt/x' said only "Not a directory"."""
    srv, shared = host
    (shared / "f.txt").write_bytes(b"hello")
    with api(srv) as c:
        for answer in [
            c.get("/shared/stat", params={"path": "f.txt/x"}),
            c.get("/shared/list", params={"path": "f.txt/x"}),
            c.get("/shared/files", params={"path": "f.txt/x"}),
            c.delete("/shared/files", params={"path": "f.txt/x"}),
        ]:
            assert answer.status_code == 404, (answer.request.url, answer.text)
            assert "'f.txt/x' does not exist on endpoint 'shared'" in answer.text
    assert (shared / "f.txt").read_bytes() == b"hello"


def test_a_batch_whose_final_path_is_below_a_file_writes_nothing(
    host: tuple[Server, Path],
) -> None:
    """Found only when that file's turn to be renamed came, after the files before it
    in the header were in place."""
    srv, shared = host
    (shared / "f.txt").write_bytes(b"hello")
    (shared / "d").mkdir()
    good = {"upload": "b/.a.1.dftmp", "path": "b/a.bin", "size": 3, "data": True}
    before = tree_state(shared)
    with api(srv) as c:
        for path, words in [("f.txt/c.bin", "is a file"), ("d", "is a folder")]:
            item = {"upload": "b/.c.1.dftmp", "path": path, "size": 2, "data": True}
            body = batch_body([good, item], [b"abc", b"de"])
            r = c.post("/shared/uploads/batch", content=body, headers={"Content-Type": BATCH_TYPE})
            assert r.status_code == 409 and words in r.text, r.text
            assert tree_state(shared) == before


def test_an_upload_needs_a_name_before_its_temporary_suffix(host: tuple[Server, Path]) -> None:
    srv, shared = host
    with api(srv) as c:
        for path in (".dftmp", "sub/.dftmp"):
            r = c.put("/shared/uploads", params={"path": path}, content=b"x")
            assert r.status_code == 422 and "with a name before it" in r.text, r.text
        ok = c.put("/shared/uploads", params={"path": ".a.1.dftmp"}, content=b"x")
        assert ok.status_code == 200, ok.text
    assert sorted(p.name for p in shared.iterdir()) == [".a.1.dftmp"]


def test_fsspec_filesystem_reads_writes_and_resumes(host: tuple[Server, Path]) -> None:
    srv, shared = host
    client = PeerClient(SiteAccess("home", srv.url, TOKEN), "fac")
    fs = PeerEndpointFS("remote", PeerFileSystem("home", "shared", client), "/", {})
    try:
        data = os.urandom(20 * 1024 * 1024 + 3)
        fs.makedirs("/d")
        with fs.open_write("/d/.big.7.dftmp") as f:
            f.write(data[:9_000_000])
        # an interrupted upload is continued from what the peer holds
        assert fs.size("/d/.big.7.dftmp") == 9_000_000
        with fs.open_append("/d/.big.7.dftmp") as f:
            f.write(data[9_000_000:])
        fs.rename("/d/.big.7.dftmp", "/d/big")
        assert (
            hashlib.sha256((shared / "d" / "big").read_bytes()).digest()
            == hashlib.sha256(data).digest()
        )
        with fs.open_read_at("/d/big", 20 * 1024 * 1024) as f:
            assert f.read() == data[20 * 1024 * 1024 :]
        assert fs.fs.info("/d/big")["size"] == len(data)
        assert fs.fs.isdir("/d") and not fs.fs.exists("/d/nothing")
        assert fs.fs.find("/", detail=False) == ["/d/big"]
        fs.remove("/d/big")
        assert not (shared / "d" / "big").exists()
    finally:
        fs.close()


def test_transfers_read_and_write_another_instance(
    server_factory: Any, tmp_path: Path, consumer_db: str
) -> None:
    pair = make_pair(server_factory, tmp_path, consumer_db)
    expected = make_tree(pair.data / "set", 60, seed=3, max_size=3 * 1024 * 1024)
    # The consumer reads the provider's endpoint once the provider allows it.
    pair.consumer.cli("endpoint", "add", "fac-data", f"dataferry://{PROVIDER}/data/set")
    refused = pair.consumer.cli("transfer", "fac-data:", "inbox:pulled", check=False)
    assert refused.returncode == 1 and "may not read endpoint 'data'" in refused.stderr
    pair.provider.cli("endpoint", "remove", "data")
    pair.provider.cli("endpoint", "add", "data", str(pair.data), "-o", "peer_read=home")
    # a peer's view of endpoint options is cached for up to 2 seconds
    deadline = time.monotonic() + 30
    while (
        r := pair.consumer.cli("transfer", "fac-data:", "inbox:pulled", "--json", check=False)
    ).returncode:
        assert "may not read" in r.stderr and time.monotonic() < deadline, r.stderr
        time.sleep(0.3)
    job = json.loads(r.stdout)
    doc = pair.consumer.wait_job(job["job_id"])
    assert doc["state"] == "succeeded", doc
    assert hash_tree(pair.inbox / "pulled") == expected
    # The provider writes into the consumer's endpoint (peer_write=fac).
    pair.provider.cli("endpoint", "add", "home-inbox", "dataferry://home/inbox/pushed")
    job = pair.provider.cli_json("transfer", "data:set", "home-inbox:")
    doc = pair.provider.wait_job(job["job_id"])
    assert doc["state"] == "succeeded", doc
    assert hash_tree(pair.inbox / "pushed") == expected
    assert temporaries(pair.inbox) == []


def test_uploads_keep_a_receipt_of_what_arrived(host: tuple[Server, Path]) -> None:
    """Every upload written from its first byte keeps the SHA-256 of the bytes that
    arrived on the file (the consumer's integrity check uses it instead of reading
    the file back); a resumed upload keeps none, and a receipt stops counting once
    the file changes."""
    from dataferry.datasets import receipts
    from dataferry.endpoints.backends.local import LocalEndpointFS

    srv, shared = host
    fs = LocalEndpointFS("shared", str(shared), {})

    def receipt(rel: str) -> str | None:
        return receipts.recorded(fs, str(shared / rel))

    def sha(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    small, big = os.urandom(50_000), os.urandom(5 * 1024 * 1024 + 3)  # one call; streamed
    a, b = os.urandom(70_000), os.urandom(9_000)
    files = [
        {"upload": "r/.a.1.dftmp", "path": "r/a.bin", "size": len(a), "data": True},
        {"upload": "r/.e.1.dftmp", "path": "r/empty", "size": 0, "data": True},
        {"upload": "r/.b.1.dftmp", "path": "r/b.bin", "size": len(b), "data": True},
    ]
    with api(srv) as c:
        for rel, data in (("r/small.bin", small), ("r/big.bin", big)):
            tmp = f"r/.{rel[2:]}.1.dftmp"
            r = c.put("/shared/uploads", params={"path": tmp, "commit": rel}, content=data)
            assert r.status_code == 200, r.text
        body = batch_body(files, [a, b])
        r = c.post("/shared/uploads/batch", content=body, headers={"Content-Type": BATCH_TYPE})
        assert r.status_code == 200, r.text
        for rel, data in (("r/small.bin", small), ("r/big.bin", big), ("r/a.bin", a)):
            assert receipt(rel) == sha(data), rel
        assert receipt("r/b.bin") == sha(b) and receipt("r/empty") == sha(b"")
        # an upload resumed from the middle: no receipt (its hash would need a read)
        tmp = "r/.resumed.1.dftmp"
        c.put("/shared/uploads", params={"path": tmp}, content=small[:20_000])
        r = c.put(
            "/shared/uploads",
            params={"path": tmp, "offset": 20_000, "commit": "r/resumed.bin"},
            content=small[20_000:],
        )
        assert r.status_code == 200, r.text
        assert (shared / "r" / "resumed.bin").read_bytes() == small
        assert receipt("r/resumed.bin") is None
    # the file changes after it arrived: appended, rewritten at the same size, or
    # replaced by another file under its name: the receipt no longer counts
    with open(shared / "r" / "small.bin", "ab") as f:
        f.write(b"more")
    assert receipt("r/small.bin") is None
    time.sleep(0.01)
    (shared / "r" / "a.bin").write_bytes(os.urandom(len(a)))
    assert receipt("r/a.bin") is None
    (shared / "other").write_bytes(b)
    os.replace(shared / "other", shared / "r" / "b.bin")
    assert receipt("r/b.bin") is None
    # a receipt that is not one: ignored
    os.setxattr(shared / "r" / "big.bin", receipts.XATTR, b"not a digest")
    assert receipt("r/big.bin") is None


def tree_state(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (temporaries too) with its bytes, and every folder."""
    out: dict[str, bytes] = {}
    for folder, dirs, names in os.walk(root):
        for d in dirs:
            out[(Path(folder) / d).relative_to(root).as_posix() + "/"] = b""
        for n in names:
            p = Path(folder) / n
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


def test_batch_header_is_checked_whole_before_a_byte_is_written(
    host: tuple[Server, Path],
) -> None:
    """Each file of a batch header is exactly {"upload": str, "path": str, "size": int,
    "data": bool}: a ``data`` flag of 1, "yes" or "false" is not a boolean, a size is
    not negative nor beyond a file's largest size, no name is given twice, no path
    leaves the endpoint or names its root. Any of these is a 422 before anything is
    written or put in place, even when the files before it in the header are good
    (a bad final path or size used to fail at its commit, after those were in place)."""
    srv, shared = host
    held = os.urandom(40)
    a, c2 = b"abc", b"de"
    good_a = {"upload": "b/.a.1.dftmp", "path": "b/a.bin", "size": len(a), "data": True}
    good_c = {"upload": "b/.c.1.dftmp", "path": "b/c.bin", "size": len(c2), "data": True}
    held_item: dict[str, Any] = {
        "upload": "h/.held.1.dftmp",
        "path": "h/held.bin",
        "size": len(held),
    }
    headers = {"Content-Type": BATCH_TYPE}
    bad: list[tuple[str, dict[str, Any], list[bytes]]] = [
        ("data", {**good_c, "data": 1}, [a, c2]),
        ("data", {**good_c, "data": "yes"}, [a, c2]),
        ("data", {**good_c, "data": "false"}, [a, c2]),
        ("data", {**good_c, "data": None}, [a]),
        ("data", {**held_item, "data": 0}, [a]),
        ("data", held_item, [a]),  # no data flag at all
        ("size", {**good_c, "size": True}, [a, b"d"]),
        ("size", {**good_c, "size": "2"}, [a, c2]),
        ("size", {**good_c, "size": 2.0}, [a, c2]),
        ("size", {**held_item, "size": -1, "data": False}, [a]),
        ("size", {**held_item, "size": 2**63, "data": False}, [a]),
        ("size", {**held_item, "size": 10**30, "data": False}, [a]),
        ("path", {**good_c, "path": "../c.bin"}, [a, c2]),
        ("path", {**good_c, "path": "b/../../c.bin"}, [a, c2]),
        ("path", {**good_c, "path": "/etc/c.bin"}, [a, c2]),
        ("path", {**good_c, "path": ""}, [a, c2]),
        ("path", {**good_c, "path": "./"}, [a, c2]),
        ("path", {**good_c, "path": 7}, [a, c2]),
        ("upload", {**good_c, "upload": "../.c.1.dftmp"}, [a, c2]),
        ("upload", {**good_c, "upload": "/tmp/.c.1.dftmp"}, [a, c2]),
        ("upload", {**good_c, "upload": ["b/.c.1.dftmp"]}, [a, c2]),
        ("twice", {**good_c, "path": "b/a.bin"}, [a, c2]),
        ("twice", {**good_c, "path": "b//./a.bin"}, [a, c2]),
        ("twice", {**good_c, "upload": "b/.a.1.dftmp"}, [a, c2]),
        ("twice", {**good_c, "path": "b/.a.1.dftmp"}, [a, c2]),
        ("twice", {**good_c, "path": "b/.c.1.dftmp"}, [a, c2]),
        ("unknown", {**good_c, "durable": True}, [a, c2]),
    ]
    with api(srv) as c:
        r = c.put("/shared/uploads", params={"path": held_item["upload"]}, content=held)
        assert r.status_code == 200, r.text
        before = tree_state(shared)
        for what, item, blobs in bad:
            body = batch_body([good_a, item], blobs)
            r = c.post("/shared/uploads/batch", content=body, headers=headers)
            assert r.status_code == 422, (what, item, r.status_code, r.text)
            assert r.json()["error"] == "invalid", r.text
            assert tree_state(shared) == before, (what, item)
        # a header that is not JSON a file list can be read from, nested deeper than
        # any parser goes included (that was a 500)
        for header in (b"[" * 200_000, b'{"files": ' + b"[" * 200_000, b"\xff\xfe", b"[]"):
            body = len(header).to_bytes(4, "big") + header
            r = c.post("/shared/uploads/batch", content=body, headers=headers)
            assert r.status_code == 422, (header[:20], r.status_code, r.text)
            assert r.json()["error"] == "invalid", r.text
        assert tree_state(shared) == before
        # the same group, well formed: the held upload is committed without its bytes
        files = [good_a, good_c, {**held_item, "data": False}]
        r = c.post("/shared/uploads/batch", content=batch_body(files, [a, c2]), headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["committed"] == ["b/a.bin", "b/c.bin", "h/held.bin"]
    assert (shared / "b" / "a.bin").read_bytes() == a
    assert (shared / "b" / "c.bin").read_bytes() == c2
    assert (shared / "h" / "held.bin").read_bytes() == held
    assert temporaries(shared) == []


def test_commit_body_is_strict_and_a_bad_one_changes_nothing(host: tuple[Server, Path]) -> None:
    """``POST /commit`` takes exactly {"upload": str, "path": str, "size": int|null,
    "durable": bool}, of JSON's own types: a size of "12" was taken as 12 and the
    upload put in place, a negative or huge size got as far as the size check, and a
    ``durable`` of "yes" or 1 was read as true. Each is a 422 naming the field, and
    nothing is renamed."""
    srv, shared = host
    data = b"hello world!"
    tmp = "c/.a.1.dftmp"
    good = {"upload": tmp, "path": "c/a.bin", "size": len(data), "durable": True}
    bad: list[tuple[str, Any]] = [
        ("size", {**good, "size": "12"}),
        ("size", {**good, "size": 12.0}),
        ("size", {**good, "size": True}),
        ("size", {**good, "size": -1}),
        ("size", {**good, "size": 2**63}),
        ("size", {**good, "size": 10**30}),
        ("durable", {**good, "durable": "yes"}),
        ("durable", {**good, "durable": 1}),
        ("durable", {**good, "durable": "false"}),
        ("durable", {**good, "durable": None}),
        ("upload", {**good, "upload": 5}),
        ("upload", {**good, "upload": [tmp]}),
        ("path", {**good, "path": None}),
        ("path", {k: v for k, v in good.items() if k != "path"}),
        ("unknown", {**good, "sync": True}),
        ("object", [good]),
        ("path", {**good, "path": ""}),
        ("path", {**good, "path": "./"}),
        ("path", {**good, "path": "../a.bin"}),
        ("path", {**good, "path": "c/../../a.bin"}),
        ("path", {**good, "path": "/etc/a.bin"}),
        ("path", {**good, "path": "c/a\x00.bin"}),
        ("path", {**good, "path": "c\\a.bin"}),
        ("path", {**good, "path": tmp}),  # onto itself
        ("path", {**good, "path": "./c//.a.1.dftmp"}),  # the same, spelled otherwise
        ("upload", {**good, "upload": "../.a.1.dftmp"}),
        ("upload", {**good, "upload": "/tmp/.a.1.dftmp"}),
    ]
    with api(srv) as c:
        assert c.put("/shared/uploads", params={"path": tmp}, content=data).status_code == 200
        before = tree_state(shared)
        for what, body in bad:
            r = c.post("/shared/commit", json=body)
            assert r.status_code == 422, (what, body, r.status_code, r.text)
            assert r.json()["error"] == "invalid", r.text
            if what in ("size", "durable"):
                assert r.json()["detail"].startswith(f"{what}: "), r.text
            assert tree_state(shared) == before, (what, body)
        r = c.post("/shared/commit", json=good)
        assert r.status_code == 200, r.text
        assert r.json() == {"path": "c/a.bin", "type": "file", "size": len(data)}
        # size null (or absent) is not checked; durable absent means true
        c.put("/shared/uploads", params={"path": "c/.b.1.dftmp"}, content=data)
        r = c.post("/shared/commit", json={"upload": "c/.b.1.dftmp", "path": "c/b", "size": None})
        assert r.status_code == 200, r.text
    assert (shared / "c" / "a.bin").read_bytes() == data
    assert (shared / "c" / "b").read_bytes() == data
    assert temporaries(shared) == []


def test_a_query_parameter_given_twice_is_refused(host: tuple[Server, Path]) -> None:
    """Every peer call takes each query parameter once: given twice, the last one
    counted, so ``DELETE /files?path=nope&path=keep.txt`` removed keep.txt and a PUT
    wrote to the second of two temporary names. Now a 422 naming the parameter, and
    nothing changed."""
    srv, shared = host
    (shared / "keep.txt").write_bytes(b"keep")
    (shared / "d").mkdir()
    up = "path=d/.a.1.dftmp"
    with api(srv) as c:
        assert c.put(f"/shared/uploads?{up}", content=b"abc").status_code == 200
        before = tree_state(shared)
        for method, url in [
            ("DELETE", "/shared/files?path=nope&path=keep.txt"),
            ("PUT", "/shared/uploads?path=d/.x.1.dftmp&path=d/.y.1.dftmp"),
            ("PUT", f"/shared/uploads?{up}&offset=0&offset=3"),
            ("PUT", f"/shared/uploads?{up}&offset=3&commit=d/one&commit=d/two"),
            ("PUT", f"/shared/uploads?{up}&offset=3&durable=true&durable=false"),
            ("POST", "/shared/folders?path=m1&path=m2"),
            ("GET", "/shared/stat?path=keep.txt&path=d"),
            ("GET", "/shared/list?path=&path=d"),
            ("GET", "/shared/list?path=&recursive=false&recursive=true"),
            ("GET", "/shared/files?path=keep.txt&path=d/.a.1.dftmp"),
            ("GET", f"/shared/uploads?{up}&{up}"),
            ("POST", f"/shared/uploads/sync?{up}&{up}"),
        ]:
            r = c.request(method, url, content=b"z" if method == "PUT" else None)
            assert r.status_code == 422, (method, url, r.status_code, r.text)
            assert r.json() == {
                "error": "invalid",
                "detail": f"query parameter {url.split('&')[-1].split('=')[0]!r} is given twice",
            }, r.text
            assert tree_state(shared) == before, (method, url)


def test_numbers_and_flags_in_a_query_are_strict(host: tuple[Server, Path]) -> None:
    """``offset`` is digits only, 0 to 2^63-1, and ``durable`` / ``recursive`` are
    ``true`` or ``false``: "3.0", " 3", "+3" and "3_0" (which became 30) were taken
    as numbers and the bytes written there, an offset past 64 bits was a 409 as if
    it could be resumed, and "yes", "1" or "on" were read as true. Each is a 422
    naming the parameter, and nothing is written."""
    srv, shared = host
    tmp = "q/.a.1.dftmp"
    with api(srv) as c:
        assert c.put("/shared/uploads", params={"path": tmp}, content=b"abc").status_code == 200
        before = tree_state(shared)
        for offset in ("3.0", " 3", "3 ", "+3", "3_0", "0x3", "-1", "", "three", "٣"):
            for body in (b"z", os.urandom(5 * 1024 * 1024)):  # one call; streamed
                r = c.put("/shared/uploads", params={"path": tmp, "offset": offset}, content=body)
                assert r.status_code == 422, (offset, r.status_code, r.text)
                assert r.json()["detail"].startswith("offset must be"), r.text
        for offset in (str(2**63), str(10**30), "9" * 5000):
            r = c.put("/shared/uploads", params={"path": tmp, "offset": offset}, content=b"z")
            assert r.status_code == 422, (offset[:30], r.status_code, r.text)
            assert r.json()["detail"].startswith("offset must be"), r.text
        for flag in ("yes", "1", "on", "True", "", "0"):
            r = c.put(
                "/shared/uploads",
                params={"path": tmp, "offset": 3, "durable": flag, "commit": "q/a"},
                content=b"z",
            )
            assert r.status_code == 422, (flag, r.status_code, r.text)
            assert r.json()["detail"].startswith("durable must be true or false"), r.text
            r = c.get("/shared/list", params={"path": "", "recursive": flag})
            assert r.status_code == 422, (flag, r.status_code, r.text)
            assert r.json()["detail"].startswith("recursive must be true or false"), r.text
        assert tree_state(shared) == before
        # the spellings the protocol has: digits, true and false
        r = c.put("/shared/uploads", params={"path": tmp, "offset": "3"}, content=b"d")
        assert r.status_code == 200 and r.json()["size"] == 4, r.text
        r = c.put(
            "/shared/uploads",
            params={"path": tmp, "offset": "4", "durable": "false", "commit": "q/a"},
            content=b"e",
        )
        assert r.status_code == 200, r.text
        listed = c.get("/shared/list", params={"path": "", "recursive": "true"}).json()
        assert [e["path"] for e in listed["entries"]] == ["q", "q/a"]
        flat = c.get("/shared/list", params={"path": "", "recursive": "false"}).json()
        assert [e["path"] for e in flat["entries"]] == ["q"]
    assert (shared / "q" / "a").read_bytes() == b"abcde"


def test_a_put_with_a_bad_commit_target_writes_nothing(host: tuple[Server, Path]) -> None:
    """``PUT /uploads?commit=PATH`` checks PATH before it writes a byte: a target that
    leaves the endpoint, names its root, is a folder, lies below a file or is the
    upload itself used to be refused only after the upload was written (a small one
    replacing what the temporary held, a large one left behind); ``commit=`` (empty) was taken as no
    commit at all, and the upload committed onto itself answered 200. The answer
    names the upload's path cleaned, as the other calls do."""
    srv, shared = host
    (shared / "p" / "dir").mkdir(parents=True)
    tmp = "p/.a.1.dftmp"
    with api(srv) as c:
        assert c.put("/shared/uploads", params={"path": tmp}, content=b"held").status_code == 200
        before = tree_state(shared)
        (shared / "p" / "file.txt").write_bytes(b"in the way")
        before = tree_state(shared)
        bad = ["", "./", "../x", "/x", "p/x\x01", "p\\x", "p/dir", "p/file.txt/x", "p/file.txt/y/z"]
        for target, uploads in [
            *((t, (tmp, "p/.new.1.dftmp")) for t in bad),
            *((t, (tmp,)) for t in (tmp, "./p//.a.1.dftmp")),  # onto itself
        ]:
            for upload in uploads:
                for body in (b"small", os.urandom(5 * 1024 * 1024)):  # one call; streamed
                    r = c.put(
                        "/shared/uploads", params={"path": upload, "commit": target}, content=body
                    )
                    assert r.status_code in (409, 422), (target, upload, r.status_code, r.text)
                    assert tree_state(shared) == before, (target, upload, len(body))
        # a path spelled loosely is answered cleaned
        r = c.put("/shared/uploads", params={"path": "./p//.b.1.dftmp"}, content=b"b")
        assert r.json() == {"path": "p/.b.1.dftmp", "size": 1}, r.text
        r = c.put(
            "/shared/uploads", params={"path": "./p//.c.1.dftmp"}, content=os.urandom(5 << 20)
        )
        assert r.json() == {"path": "p/.c.1.dftmp", "size": 5 << 20}, r.text
        r = c.post("/shared/folders", params={"path": "./p//made/"})
        assert r.status_code == 201 and r.json() == {"path": "p/made", "type": "directory"}
        r = c.put("/shared/uploads", params={"path": tmp, "commit": "./p//a"}, content=b"new")
        assert r.status_code == 200 and r.json() == {"path": "p/a", "type": "file", "size": 3}
    assert (shared / "p" / "a").read_bytes() == b"new"


def test_a_range_that_names_no_bytes_gets_no_content_range_that_lies(
    host: tuple[Server, Path],
) -> None:
    """``Range: bytes=50-10`` (an end before its start) was a 206 with
    ``Content-Range: bytes 50-10/100``, and any range on an empty file a 206 with
    ``bytes 0--1/0``: headers no client can read. An end before the start is now a
    422; a range from 0 on an empty file is its whole (empty) body, 200, and one
    from further on is 416 ``bytes */0``."""
    srv, shared = host
    data = os.urandom(100)
    (shared / "h.bin").write_bytes(data)
    (shared / "empty").write_bytes(b"")
    with api(srv) as c:

        def get(path: str, rng: str) -> httpx.Response:
            return c.get("/shared/files", params={"path": path}, headers={"Range": rng})

        backwards = get("h.bin", "bytes=50-10")
        assert backwards.status_code == 422, (backwards.status_code, backwards.headers)
        assert "ends before it starts" in backwards.json()["detail"]
        for rng in ("bytes=0-", "bytes=0-0", "bytes=0-99"):
            whole = get("empty", rng)
            assert whole.status_code == 200, (rng, whole.status_code, whole.headers)
            assert whole.content == b"" and "content-range" not in whole.headers
        for rng in ("bytes=1-", "bytes=5-9"):
            past = get("empty", rng)
            assert past.status_code == 416, (rng, past.status_code, past.headers)
            assert past.headers["content-range"] == "bytes */0"
        # numbers longer than Python's int() takes from text (that was a 500)
        huge = "9" * 5000
        past = get("h.bin", f"bytes={huge}-")
        assert past.status_code == 416 and past.headers["content-range"] == "bytes */100"
        tail = get("h.bin", f"bytes=90-{huge}")
        assert tail.status_code == 206 and tail.content == data[90:]
        assert tail.headers["content-range"] == "bytes 90-99/100"
        one = get("h.bin", "bytes=50-50")
        assert one.status_code == 206 and one.content == data[50:51]
        assert one.headers["content-range"] == "bytes 50-50/100"


def test_a_batch_header_with_a_lone_surrogate_is_refused(host: tuple[Server, Path]) -> None:
    """A header may spell a lone surrogate ("\\ud800"), which no file name can hold:
    it reached the file system and was a 500. Now a 422 before anything is written."""
    srv, shared = host
    before = tree_state(shared)
    with api(srv) as c:
        for field in ("path", "upload"):
            name = "s/x\\ud800.bin" if field == "path" else "s/.x\\udfff.1.dftmp"
            other = "s/.x.1.dftmp" if field == "path" else "s/x.bin"
            header = (
                f'{{"files": [{{"{field}": "{name}", '
                f'"{"upload" if field == "path" else "path"}": "{other}", '
                '"size": 1, "data": true}]}'
            ).encode()
            body = len(header).to_bytes(4, "big") + header + b"z"
            r = c.post("/shared/uploads/batch", content=body, headers={"Content-Type": BATCH_TYPE})
            assert r.status_code == 422, (field, r.status_code, r.text)
            assert "surrogate" in r.json()["detail"], r.text
    assert tree_state(shared) == before


def test_a_batch_header_is_files_alone_with_no_key_given_twice(
    host: tuple[Server, Path],
) -> None:
    """A header's top level was read for ``files`` alone, whatever else it held, and a
    key given twice in any of its objects counted once, as its last value: a file
    claiming ``"size": 9`` then ``"size": 3`` was taken as 3. Each is now a 422
    before anything is written."""
    srv, shared = host
    file = '{"upload": "k/.a.1.dftmp", "path": "k/a", "size": 9, "size": 3, "data": true}'
    plain = '{"upload": "k/.a.1.dftmp", "path": "k/a", "size": 3, "data": true}'
    before = tree_state(shared)
    with api(srv) as c:
        for header in (
            f'{{"files": [{file}]}}',
            f'{{"files": [], "files": [{plain}]}}',
            f'{{"files": [{plain}], "durable": false}}',
        ):
            raw = header.encode()
            body = len(raw).to_bytes(4, "big") + raw + b"abc"
            r = c.post("/shared/uploads/batch", content=body, headers={"Content-Type": BATCH_TYPE})
            assert r.status_code == 422, (header, r.status_code, r.text)
            assert r.json()["error"] == "invalid", r.text
            assert tree_state(shared) == before, header


def test_a_query_that_is_not_utf8_is_refused_not_replaced(host: tuple[Server, Path]) -> None:
    """A query percent-escaping bytes that are not UTF-8 (``%FF``, or ``%ED%A0%80``,
    a surrogate) had each bad byte replaced by U+FFFD: ``PUT
    /uploads?path=%FF.1.dftmp`` wrote a file named "\\ufffd.1.dftmp", a name the
    peer never sent. Now a 422 and nothing written; U+FFFD sent as UTF-8 is a name
    like any other."""
    srv, shared = host
    before = tree_state(shared)
    with api(srv) as c:
        for method, url in [
            ("PUT", "/shared/uploads?path=%FF.1.dftmp"),
            ("PUT", "/shared/uploads?path=.a.1.dftmp&commit=%ED%A0%80"),
            ("POST", "/shared/folders?path=d%C3"),
            ("GET", "/shared/stat?path=%FF"),
            ("DELETE", "/shared/files?path=%FF"),
        ]:
            r = c.request(method, url, content=b"z" if method == "PUT" else None)
            assert r.status_code == 422, (method, url, r.status_code, r.text)
            assert "not UTF-8 text" in r.json()["detail"], r.text
        assert tree_state(shared) == before
        r = c.put("/shared/uploads?path=%EF%BF%BD.1.dftmp", content=b"z")
        assert r.status_code == 200 and r.json()["path"] == "\ufffd.1.dftmp", r.text


def test_the_size_of_an_upload_that_is_a_folder_is_not_a_folder_size(
    host: tuple[Server, Path],
) -> None:
    """``GET /uploads?path=TMP`` where TMP is a folder answered the folder's own size
    (4096 on ext4) as the bytes held, an offset to resume from that no PUT can take.
    Now a 409 saying it is a folder."""
    srv, shared = host
    (shared / "f" / ".d.1.dftmp").mkdir(parents=True)
    with api(srv) as c:
        r = c.get("/shared/uploads", params={"path": "f/.d.1.dftmp"})
        assert r.status_code == 409, (r.status_code, r.text)
        said = r.json()["detail"]
        assert said == "'f/.d.1.dftmp' on endpoint 'shared' is a folder, not an upload", said
        r = c.get("/shared/uploads", params={"path": "f/.none.1.dftmp"})
        assert r.status_code == 200 and r.json() == {"path": "f/.none.1.dftmp", "size": 0}


def test_a_json_body_gives_no_key_twice(host: tuple[Server, Path]) -> None:
    """``POST /commit`` and ``POST /uploads/sync`` read a key given twice as its last
    value: ``{"size": 1, "size": 12}`` was checked as 12 and the upload put in place.
    Now a 422, and nothing renamed, as in a batch header."""
    srv, shared = host
    tmp = "j/.a.1.dftmp"
    with api(srv) as c:
        assert c.put("/shared/uploads", params={"path": tmp}, content=b"x" * 12).status_code == 200
        before = tree_state(shared)
        for url, body in [
            ("/shared/commit", f'{{"upload": "{tmp}", "path": "j/a", "size": 1, "size": 12}}'),
            ("/shared/commit", f'{{"upload": "x", "upload": "{tmp}", "path": "j/a"}}'),
            ("/shared/uploads/sync", f'{{"uploads": [], "uploads": ["{tmp}"]}}'),
        ]:
            r = c.post(url, content=body.encode(), headers={"Content-Type": "application/json"})
            assert r.status_code == 422, (body, r.status_code, r.text)
            assert "twice" in r.json()["detail"], r.text
            assert tree_state(shared) == before, body
        body = f'{{"upload": "{tmp}", "path": "j/a", "size": 12}}'
        r = c.post("/shared/commit", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
