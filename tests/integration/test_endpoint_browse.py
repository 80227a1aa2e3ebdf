"""Browsing an endpoint (``rclone lsl``, Globus's file browser): what is at a path, over
REST (``GET /api/v1/endpoints/{name}/files``), the CLI (``dataferry endpoint ls``) and
the dashboard, on local, SFTP and S3 endpoints. Bad input is refused by name and a
listing never leaves the endpoint's root."""

from __future__ import annotations

import os
import re
import xmlrpc.client
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_remote_protocols import add_remote
from tests.support.browser import Browser
from tests.support.server import Server

TREE = {"a.txt": b"a", "run1/raw/c.bin": b"ccc", "run1/raw/d.bin": b"dd", "run1/notes.md": b"n"}


def write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def api(server: Server) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/api/v1/endpoints", timeout=30)


def entries(doc: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(e["path"], e["type"], e["size"]) for e in doc["entries"]]


@pytest.fixture
def lab(server: Server, tmp_path: Path) -> Path:
    root = tmp_path / "lab"
    write(root, TREE)
    (root / "run1" / "empty").mkdir()
    server.cli("endpoint", "add", "lab", str(root))
    return root


def test_a_folder_lists_its_entries_by_path_with_size_and_time(server: Server, lab: Path) -> None:
    with api(server) as c:
        doc = c.get("/lab/files").json()
        assert doc["type"] == "directory" and doc["path"] == "" and doc["total"] == 2
        assert entries(doc) == [("a.txt", "file", 1), ("run1", "directory", 0)]
        assert doc["entries"][0]["mtime"] == (lab / "a.txt").stat().st_mtime_ns
        assert "mtime" not in doc["entries"][1]  # a folder has no time of its own here
        doc = c.get("/lab/files", params={"path": "run1"}).json()
        assert entries(doc) == [
            ("run1/empty", "directory", 0),
            ("run1/notes.md", "file", 1),
            ("run1/raw", "directory", 0),
        ]
        doc = c.get("/lab/files", params={"path": "run1", "recursive": "true"}).json()
        assert [e[0] for e in entries(doc)] == [
            "run1/empty",
            "run1/notes.md",
            "run1/raw",
            "run1/raw/c.bin",
            "run1/raw/d.bin",
        ]
        assert doc["truncated"] is False and doc["total"] == 5
        # "", "." and "./" are the root; a file shows itself
        for root in ("", ".", "./"):
            assert c.get("/lab/files", params={"path": root}).json()["total"] == 2
        doc = c.get("/lab/files", params={"path": "run1/raw/c.bin"}).json()
        assert doc["type"] == "file" and entries(doc) == [("run1/raw/c.bin", "file", 3)]
        doc = c.get("/lab/files", params={"path": "run1/empty"}).json()
        assert doc["entries"] == [] and doc["total"] == 0


def test_a_long_listing_comes_in_pages(server: Server, lab: Path) -> None:
    write(lab, {f"many/f{i:03d}": b"x" for i in range(25)})
    with api(server) as c:
        seen: list[str] = []
        offset = 0
        while True:
            doc = c.get("/lab/files", params={"path": "many", "limit": 10, "offset": offset})
            doc = doc.json()
            assert doc["total"] == 25 and doc["offset"] == offset
            seen += [e["path"] for e in doc["entries"]]
            if not doc["truncated"]:
                break
            offset += 10
        assert seen == [f"many/f{i:03d}" for i in range(25)]
        past = c.get("/lab/files", params={"path": "many", "offset": 99}).json()
        assert past["entries"] == [] and past["total"] == 25 and past["truncated"] is False


@pytest.mark.parametrize(
    ("params", "status", "said"),
    [
        ({"path": "nope"}, 404, "'nope' does not exist on endpoint 'lab'"),
        ({"path": "a.txt/below"}, 404, "'a.txt/below' does not exist on endpoint 'lab'"),
        ({"path": "/etc"}, 422, "is absolute"),
        ({"path": "../x"}, 422, "escapes the endpoint's root"),
        ({"path": "a\x01b"}, 422, "control character"),
        ({"path": "out"}, 422, "leads outside its root through a link"),
        ({"path": "out/secret"}, 422, "leads outside its root through a link"),
        ({"limit": 0}, 422, "limit must be a whole number from 1 to 100000, not 0"),
        ({"limit": 100001}, 422, "limit must be a whole number from 1 to 100000"),
        ({"limit": "many"}, 422, "limit"),
        ({"offset": -1}, 422, "offset must be a whole number from 0"),
        ({"recursive": "perhaps"}, 422, "recursive"),
    ],
)
def test_bad_requests_are_refused_by_name(
    server: Server, lab: Path, tmp_path: Path, params: dict[str, Any], status: int, said: str
) -> None:
    outside = tmp_path / "outside"
    write(outside, {"secret/passwords.txt": b"x"})
    (lab / "out").symlink_to(outside)
    with api(server) as c:
        r = c.get("/lab/files", params=params)
        assert r.status_code == status, r.text
        assert said in str(r.json()["detail"]), r.text


def test_unknown_endpoint_is_404_and_nothing_is_listed(server: Server) -> None:
    with api(server) as c:
        r = c.get("/nowhere/files")
        assert r.status_code == 404 and "endpoint 'nowhere' does not exist" in r.text


def test_links_show_what_they_lead_to_and_recursion_stays_inside(
    server: Server, lab: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    write(outside, {"secret/passwords.txt": b"x"})
    (lab / "out").symlink_to(outside)
    (lab / "shortcut").symlink_to(lab / "run1" / "raw")
    (lab / "gone").symlink_to(tmp_path / "nothing-here")
    with api(server) as c:
        doc = c.get("/lab/files").json()
        kinds = {e["path"]: e["type"] for e in doc["entries"]}
        assert kinds["shortcut"] == "directory" and kinds["out"] == "directory"
        assert kinds["gone"] == "file"  # a dangling link: the link itself
        inside = c.get("/lab/files", params={"path": "shortcut"}).json()
        assert entries(inside) == [("shortcut/c.bin", "file", 3), ("shortcut/d.bin", "file", 2)]
        deep = c.get("/lab/files", params={"recursive": "true"}).json()
        assert not [e for e in deep["entries"] if "passwords" in e["path"]]


def test_the_cli_prints_size_time_and_path_and_pages(server: Server, lab: Path) -> None:
    os.utime(lab / "a.txt", ns=(0, 1_700_000_000_000_000_000))
    out = server.cli("endpoint", "ls", "lab").stdout.splitlines()
    assert out == [
        f"{1:>14} 2023-11-14 22:13:20  a.txt",
        f"{'-':>14} {'-':<19}  run1/",
    ]
    assert server.cli("endpoint", "ls", "lab:").stdout.splitlines() == out
    deep = server.cli("endpoint", "ls", "lab:run1", "-R").stdout
    assert "run1/raw/c.bin" in deep and "run1/empty/" in deep
    paged = server.cli("endpoint", "ls", "lab:run1", "-R", "--limit", "2").stdout
    assert paged.splitlines()[-1] == "entries 1-2 of 5 (next: --offset 2)"
    assert "(empty folder)" in server.cli("endpoint", "ls", "lab:run1/empty").stdout
    doc = server.cli_json("endpoint", "ls", "lab:run1/raw/d.bin")
    assert doc["type"] == "file" and doc["entries"][0]["size"] == 2
    (lab / "line\nbreak.txt").write_bytes(b"")
    assert "line\\nbreak.txt" in server.cli("endpoint", "ls", "lab").stdout
    bad = server.cli("endpoint", "ls", "lab:nope", check=False)
    assert bad.returncode != 0 and "'nope' does not exist on endpoint 'lab'" in bad.stderr
    bad = server.cli("endpoint", "ls", ":run1", check=False)
    assert bad.returncode != 0 and "give ENDPOINT:PATH" in bad.stderr


def test_remote_endpoints_list_the_same_way(
    request: pytest.FixtureRequest, server: Server, tmp_path: Path
) -> None:
    for protocol in ("sftp", "s3"):
        add_remote(request, server, protocol, tmp_path / protocol)
        src = tmp_path / f"src-{protocol}"
        write(src, TREE)
        server.cli("endpoint", "add", f"src-{protocol}", str(src))
        server.cli("transfer", f"src-{protocol}:", "remote:copy", "--wait")
        with api(server) as c:
            doc = c.get("/remote/files", params={"path": "copy", "recursive": "true"}).json()
            files = {e["path"]: e["size"] for e in doc["entries"] if e["type"] == "file"}
            assert files == {f"copy/{k}": len(v) for k, v in TREE.items()}, protocol
            top = c.get("/remote/files", params={"path": "copy"}).json()
            assert entries(top) == [("copy/a.txt", "file", 1), ("copy/run1", "directory", 0)]
            assert c.get("/remote/files", params={"path": "copy/zz"}).status_code == 404
        server.cli("endpoint", "remove", "remote")


def test_the_dashboard_browses_folders_and_starts_a_transfer_from_one(
    server: Server, lab: Path
) -> None:
    write(lab, {f"many/f{i:03d}": b"x" for i in range(205)})
    with Browser(server.url) as b:
        page = b.get("/endpoints").text
        assert 'href="/endpoints/lab/files"' in page
        page = b.get("/endpoints/lab/files").text
        assert re.findall(r'data-path="([^"]+)"', page) == ["a.txt", "many", "run1"]
        page = b.get("/endpoints/lab/files", params={"path": "run1"}).text
        assert 'href="/endpoints/lab/files?path=run1/raw">raw/</a>' in page
        assert 'aria-current="location">run1<' in page
        assert 'href="/transfers/new?source=lab%3Arun1"' in page
        form = b.get("/transfers/new", params={"source": "lab:run1"}).text
        assert '<option value="lab" selected>' in form
        assert 'name="source_path" value="run1"' in form
        page = b.get("/endpoints/lab/files", params={"path": "many"}).text
        assert len(re.findall(r"data-path=", page)) == 200
        assert "Entries 1 to 200 of 205." in page and 'rel="next"' in page
        page = b.get("/endpoints/lab/files", params={"path": "many", "offset": "200"}).text
        assert re.findall(r'data-path="([^"]+)"', page) == [f"many/f{i}" for i in range(200, 205)]
        missing = b.get("/endpoints/lab/files", params={"path": "nope"})
        assert missing.status_code == 404 and "does not exist on endpoint" in missing.text
        bad = b.get("/endpoints/lab/files", params={"offset": "x"})
        assert bad.status_code == 422 and "offset must be a whole number" in bad.text


def test_the_rpc_doors_list_as_rest_does(server: Server, lab: Path) -> None:
    os.utime(lab / "a.txt", ns=(0, 1_700_000_000_123_456_789))  # past 32 bits: <i8>
    with api(server) as c:
        rest = c.get("/lab/files", params={"path": "run1", "recursive": "true"}).json()
    proxy: Any = xmlrpc.client.ServerProxy(f"{server.url}/data_mover", allow_none=True)
    assert proxy.endpoints.files("lab", "run1", True) == rest
    top = proxy.endpoints.files("lab")
    assert top["entries"][0] == {
        "path": "a.txt",
        "type": "file",
        "size": 1,
        "mtime": 1_700_000_000_123_456_789,
    }
    call = {"jsonrpc": "2.0", "id": 1, "method": "endpoints.files"}
    r = httpx.post(f"{server.url}/jsonrpc", json={**call, "params": ["lab", "run1", True]})
    assert r.json()["result"] == rest
    r = httpx.post(
        f"{server.url}/jsonrpc",
        json={**call, "params": {"endpoint": "lab", "path": "run1", "limit": 2, "offset": 2}},
    )
    assert [e["path"] for e in r.json()["result"]["entries"]] == ["run1/raw"]
    for bad, said in (
        (["lab", "run1", "yes"], "recursive must be true or false"),
        (["lab", "run1", False, True], "limit must be a whole number"),
        (["lab", "run1", False, 1.5], "limit must be a whole number"),
        (["lab", "run1", False, 10, -1], "offset must be a whole number"),
        (["lab", 7], "path must be text"),
        (["lab", "../up"], "escapes the endpoint's root"),
        (["nowhere"], "endpoint 'nowhere' does not exist"),
    ):
        error = httpx.post(f"{server.url}/jsonrpc", json={**call, "params": bad}).json()["error"]
        assert said in error["message"], (bad, error)
        with pytest.raises(xmlrpc.client.Fault) as fault:
            proxy.endpoints.files(*bad)
        assert said in fault.value.faultString, bad
