"""Include/exclude patterns through every door: CLI, REST, JSON-RPC, the dashboard form."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.support.server import Server


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def tree(server: Server, tmp_path: Path) -> tuple[Path, Path]:
    src, dst = tmp_path / "src", tmp_path / "dst"
    for rel in [
        "run/a.csv",
        "run/a.tmp",
        "run/keep.tmp",
        "run/raw/b.csv",
        "run/raw/deep/c.csv",
        "run/cache/x.bin",
        "run/sub/cache/y.bin",
    ]:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(rel)
    dst.mkdir()
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))
    return src, dst


def test_cli_copies_only_the_chosen_files(server: Server, tree: tuple[Path, Path]) -> None:
    _, dst = tree
    doc = server.cli_json(
        "transfer", "src:run", "dst:out", "--exclude", "*.tmp", "--exclude", "!keep.tmp",
        "--exclude", "cache/", "--wait",
    )  # fmt: skip
    assert doc["state"] == "succeeded", doc
    assert files_under(dst / "out") == [
        "a.csv", "keep.tmp", "raw/b.csv", "raw/deep/c.csv",
    ]  # fmt: skip
    assert doc["files_total"] == 4
    with server.client() as c:
        assert sorted(f["path"] for f in c.job_files(doc["job_id"])) == [
            "a.csv", "keep.tmp", "raw/b.csv", "raw/deep/c.csv",
        ]  # fmt: skip

    doc = server.cli_json(
        "transfer", "src:run", "dst:csv", "--include", "*.csv", "--exclude", "deep/", "--wait"
    )
    assert doc["state"] == "succeeded", doc
    assert files_under(dst / "csv") == ["a.csv", "raw/b.csv"]


def test_move_leaves_the_excluded_files_where_they_are(
    server: Server, tree: tuple[Path, Path]
) -> None:
    src, dst = tree
    doc = server.cli_json(
        "transfer", "src:run", "dst:m", "--mode", "move", "--exclude", "*.bin", "--wait"
    )
    assert doc["state"] == "succeeded", doc
    assert files_under(src / "run") == ["cache/x.bin", "sub/cache/y.bin"]
    assert files_under(dst / "m") == [
        "a.csv", "a.tmp", "keep.tmp", "raw/b.csv", "raw/deep/c.csv",
    ]  # fmt: skip
    assert not (src / "run" / "raw").exists()  # emptied folders still go


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"exclude": "*.tmp"}, "list"),
        ({"exclude": [""]}, "matches nothing"),
        ({"exclude": ["#x"]}, "matches nothing"),
        ({"include": ["!"]}, "include pattern '!' is not valid"),
        ({"exclude": ["a\u0007"]}, "control character"),
        ({"exclude": [3]}, "exclude"),
        ({"exclude": ["*"] * 101}, "at most 100"),
        ({"source": "src:run/a.csv", "exclude": ["*.tmp"]}, "folder source, not a file"),
    ],
)
def test_bad_patterns_are_refused_and_nothing_is_queued(
    server: Server, tree: tuple[Path, Path], fields: dict[str, object], message: str
) -> None:
    body = {"source": "src:run", "destination": "dst:bad", **fields}
    r = httpx.post(f"{server.url}/api/v1/transfers", json=body)
    assert r.status_code == 422, r.text
    assert message in r.text
    with server.client() as c:
        assert c.jobs()["total"] == 0
    assert not (tree[1] / "bad").exists()


def test_jsonrpc_and_the_dashboard_take_patterns(server: Server, tree: tuple[Path, Path]) -> None:
    _, dst = tree
    params = {"source": "src:run", "destination": "dst:rpc", "include": ["raw/"]}
    call = {"jsonrpc": "2.0", "method": "transfers.submit", "params": params, "id": 1}
    job = httpx.post(f"{server.url}/jsonrpc", json=call).json()["result"]
    assert server.wait_job(job["job_id"])["state"] == "succeeded"
    assert files_under(dst / "rpc") == ["raw/b.csv", "raw/deep/c.csv"]
    bad = httpx.post(
        f"{server.url}/jsonrpc", json={**call, "params": {**params, "include": ["#"]}}
    ).json()
    assert bad["error"]["code"] == -32602 and "matches nothing" in bad["error"]["message"]

    with httpx.Client(base_url=server.url, headers={"Accept": "text/html"}) as browser:
        page = browser.get("/transfers/new").text
        assert 'name="exclude"' in page and 'name="include"' in page
        session = browser.cookies.get("dataferry_session")
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        form = {
            "csrf": csrf,
            "source_endpoint": "src",
            "source_path": "run",
            "destination_endpoint": "dst",
            "destination_path": "web",
            "exclude": "*.csv\n\ncache/\r\n",
        }
        headers = {"Cookie": f"dataferry_session={session}"}
        refused = browser.post("/transfers/new", data={**form, "include": "#c"}, headers=headers)
        assert refused.status_code == 422 and "matches nothing" in refused.text
        assert "cache/" in refused.text  # the form comes back as typed
        # a dry run shows the files and submits nothing
        preview = browser.post(
            "/transfers/new", data={**form, "action": "preview"}, headers=headers
        )
        assert preview.status_code == 200 and "Dry run: nothing was submitted" in preview.text
        assert "<code>a.tmp</code>" in preview.text and "a.csv" not in preview.text
        assert "2 files (" in preview.text
        with server.client() as c:
            jobs_before = c.jobs()["total"]
        assert not (dst / "web").exists()
        done = browser.post("/transfers/new", data=form, headers=headers, follow_redirects=False)
        assert done.status_code == 303, done.text
        job_id = int(done.headers["location"].rsplit("/", 1)[1])
        assert server.wait_job(job_id)["state"] == "succeeded"
        assert files_under(dst / "web") == ["a.tmp", "keep.tmp"]
        with server.client() as c:
            assert c.jobs()["total"] == jobs_before + 1
        shown = browser.get(f"/jobs/{job_id}", headers=headers).text
        assert "*.csv, cache/" in shown


def test_what_is_left_out_is_not_even_listed(server: Server, tree: tuple[Path, Path]) -> None:
    """A pipe, a link out of the endpoint and a name that is not UTF-8 fail a plan
    (tests/integration/test_bad_input.py); left out by a pattern, they are passed
    over, and so are the folders they are in."""
    src, dst = tree
    run = src / "run"
    os.mkfifo(run / "a.fifo")
    (run / "sockets").mkdir()
    os.mkfifo(run / "sockets" / "x")
    os.symlink("/etc", run / "cache" / "out")
    (run / os.fsdecode(b"caf\xe9.tmp")).write_text("x")
    refused = server.cli_json("transfer", "src:run", "dst:all", "--wait", check=False)
    assert refused["state"] == "failed", refused
    doc = server.cli_json(
        "transfer", "src:run", "dst:some", "--exclude", "*.fifo", "--exclude", "sockets/",
        "--exclude", "cache/", "--exclude", "*.tmp", "--wait",
    )  # fmt: skip
    assert doc["state"] == "succeeded", doc
    assert files_under(dst / "some") == ["a.csv", "raw/b.csv", "raw/deep/c.csv"]
    # with an exception, the excluded folder is listed (its file may be taken back)
    doc = server.cli_json(
        "transfer", "src:run", "dst:back", "--exclude", "*.fifo", "--exclude", "sockets/",
        "--exclude", "*.tmp", "--exclude", "cache/", "--exclude", "!cache/x.bin", "--wait",
        check=False,
    )  # fmt: skip
    assert doc["state"] == "failed" and "out" in doc["error"], doc  # the link out, listed


def test_an_sftp_source_passes_over_excluded_folders(
    request: pytest.FixtureRequest, server: Server, tree: tuple[Path, Path], tmp_path: Path
) -> None:
    from tests.integration.test_remote_protocols import add_remote

    _, dst = tree
    add_remote(request, server, "sftp", tmp_path)
    first = server.cli_json("transfer", "src:run", "remote:run", "--wait")
    assert first["state"] == "succeeded", first
    doc = server.cli_json(
        "transfer", "remote:run", "dst:from-sftp", "--exclude", "cache/", "--exclude", "*.tmp",
        "--wait",
    )  # fmt: skip
    assert doc["state"] == "succeeded", doc
    assert files_under(dst / "from-sftp") == ["a.csv", "raw/b.csv", "raw/deep/c.csv"]
