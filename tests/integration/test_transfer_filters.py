"""Include/exclude patterns through every door: CLI, REST, JSON-RPC, the dashboard form."""

from __future__ import annotations

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
    call = {
        "jsonrpc": "2.0",
        "method": "transfers.submit",
        "params": {"source": "src:run", "destination": "dst:rpc", "include": ["raw/"]},
        "id": 1,
    }
    job = httpx.post(f"{server.url}/jsonrpc", json=call).json()["result"]
    assert server.wait_job(job["job_id"])["state"] == "succeeded"
    assert files_under(dst / "rpc") == ["raw/b.csv", "raw/deep/c.csv"]
    bad = httpx.post(
        f"{server.url}/jsonrpc", json={**call, "params": {**call["params"], "include": ["#"]}}
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
