"""``empty_folders``: a folder transfer also creates the source's empty folders (as
rclone's --create-empty-src-dirs; cp -r and rsync -r do by default). Off by default,
as in rclone: folders that hold files always come with them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_remote_protocols import add_remote
from tests.support.server import Server


def folders_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir())


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def make_tree(run: Path) -> None:
    """Files in x/, empty folders a/empty, b/c/d (nested) and cache/tmp (excluded by
    the tests' pattern), and a folder whose only file a pattern leaves out."""
    (run / "x").mkdir(parents=True)
    (run / "x" / "f.txt").write_text("f")
    for empty in ("a/empty", "b/c/d", "cache/tmp"):
        (run / empty).mkdir(parents=True)
    (run / "logs").mkdir()
    (run / "logs" / "run.log").write_text("log")


@pytest.fixture
def src(server: Server, tmp_path: Path) -> Path:
    make_tree(tmp_path / "src" / "run")
    (tmp_path / "dst").mkdir()
    server.cli("endpoint", "add", "src", str(tmp_path / "src"))
    server.cli("endpoint", "add", "dst", str(tmp_path / "dst"))
    return tmp_path / "src" / "run"


def test_empty_folders_are_created_when_asked(server: Server, src: Path, tmp_path: Path) -> None:
    plain = server.cli_json("transfer", "src:run", "dst:plain", "--wait")
    assert plain["state"] == "succeeded", plain
    assert folders_under(tmp_path / "dst" / "plain") == ["logs", "x"]  # rclone's default

    shown = server.cli(
        "transfer", "src:run", "dst:kept", "--empty-folders", "--exclude", "cache/",
        "--exclude", "*.log", "--wait",
    ).stdout  # fmt: skip
    assert "copied 1, skipped 0 (unchanged), empty folders 2" in shown, shown
    kept = tmp_path / "dst" / "kept"
    # logs/ held only a left-out file: it is not empty in the source, so not created
    assert folders_under(kept) == ["a", "a/empty", "b", "b/c", "b/c/d", "x"]
    assert files_under(kept) == ["x/f.txt"]

    # --include takes files; an empty folder only when a pattern names it as a folder
    only_txt = server.cli_json(
        "transfer", "src:run", "dst:txt", "--empty-folders", "--include", "*.txt", "--wait"
    )
    assert only_txt["state"] == "succeeded", only_txt
    assert folders_under(tmp_path / "dst" / "txt") == ["x"]
    named = server.cli_json(
        "transfer", "src:run", "dst:named", "--empty-folders", "--include", "*.txt",
        "--include", "b/", "--wait",
    )  # fmt: skip
    assert named["state"] == "succeeded", named
    assert folders_under(tmp_path / "dst" / "named") == ["b", "b/c", "b/c/d", "x"]


def test_a_source_with_only_empty_folders_and_a_dry_run(
    server: Server, src: Path, tmp_path: Path
) -> None:
    hollow = src.parent / "hollow"
    (hollow / "p" / "q").mkdir(parents=True)
    preview = server.cli_json("transfer", "src:run", "dst:kept", "--empty-folders", "--dry-run")
    assert preview["folders"] == ["a/empty", "b/c/d", "cache/tmp"]
    assert preview["folders_total"] == 3 and preview["files_total"] == 2
    said = server.cli("transfer", "src:run", "dst:kept", "--empty-folders", "--dry-run").stdout
    assert "mkdir   b/c/d/" in said and "3 empty folders to create" in said
    assert not (tmp_path / "dst" / "kept").exists()

    doc = server.cli_json("transfer", "src:hollow", "dst:hollow", "--empty-folders", "--wait")
    assert doc["state"] == "succeeded" and doc["files_total"] == 0, doc
    assert folders_under(tmp_path / "dst" / "hollow") == ["p", "p/q"]


def test_mirror_keeps_the_source_empty_folders_and_move_takes_them(
    server: Server, src: Path, tmp_path: Path
) -> None:
    out = tmp_path / "dst" / "out"
    (out / "a" / "empty").mkdir(parents=True)
    (out / "a" / "empty" / "old.txt").write_text("not in the source")
    (out / "gone" / "deep").mkdir(parents=True)
    (out / "gone" / "deep" / "old.txt").write_text("not in the source")
    doc = server.cli_json("transfer", "src:run", "dst:out", "--mode", "mirror", "--empty-folders",
                          "--wait")  # fmt: skip
    assert doc["state"] == "succeeded", doc
    # a/empty lost its file but is an empty folder of the source: it stays
    assert folders_under(out) == ["a", "a/empty", "b", "b/c", "b/c/d", "cache", "cache/tmp",
                                  "logs", "x"]  # fmt: skip
    assert files_under(out) == ["logs/run.log", "x/f.txt"]

    moved = server.cli_json("transfer", "src:run", "dst:moved", "--mode", "move",
                            "--empty-folders", "--wait")  # fmt: skip
    assert moved["state"] == "succeeded", moved
    assert "b/c/d" in folders_under(tmp_path / "dst" / "moved")
    assert not src.exists()


def test_bad_empty_folders_values_are_refused(server: Server, src: Path) -> None:
    body: dict[str, Any] = {"source": "src:run", "destination": "dst:x"}
    for bad in ("yes", 1, None, [True]):
        r = httpx.post(f"{server.url}/api/v1/transfers", json={**body, "empty_folders": bad})
        assert r.status_code == 422 and "empty_folders" in r.text, (bad, r.text)
    call = {
        "jsonrpc": "2.0",
        "method": "transfers.submit",
        # the RPC doors read parameters laxly ("yes" is true there), not a word they don't know
        "params": {**body, "empty_folders": "maybe"},
        "id": 1,
    }
    err = httpx.post(f"{server.url}/jsonrpc", json=call).json()["error"]
    assert (
        err["code"] == -32602 and "empty_folders: Input should be a valid boolean" in err["message"]
    )
    with server.client() as c:
        assert c.jobs()["total"] == 0


@pytest.mark.parametrize("protocol", ["sftp", "s3"])
def test_empty_folders_to_and_from_a_remote(
    request: pytest.FixtureRequest, server: Server, src: Path, tmp_path: Path, protocol: str
) -> None:
    add_remote(request, server, protocol, tmp_path)
    doc = server.cli_json("transfer", "src:run", "remote:m", "--empty-folders", "--wait")
    assert doc["state"] == "succeeded", doc
    result = server.client().request("GET", f"/api/v1/jobs/{doc['job_id']}/detail")["result"]
    if protocol == "s3":  # an object store has no folders: none is made, and it says so
        assert result["folders"] == 0
        return
    assert result["folders"] == 3
    assert {"a/empty", "b/c/d"} <= set(folders_under(tmp_path / "sftp-root" / "m"))
    back = server.cli_json("transfer", "remote:m", "dst:back", "--empty-folders", "--wait")
    assert back["state"] == "succeeded", back
    assert folders_under(tmp_path / "dst" / "back") == folders_under(src)


def test_empty_folders_into_another_instance(
    server_factory: Any, tmp_path: Path, consumer_db: str
) -> None:
    from tests.support.pair import make_pair

    pair = make_pair(server_factory, tmp_path, consumer_db)
    make_tree(pair.data / "set")
    pair.provider.cli("endpoint", "add", "home-inbox", "dataferry://home/inbox/pushed")
    job = pair.provider.cli_json("transfer", "data:set", "home-inbox:", "--empty-folders")
    doc = pair.provider.wait_job(job["job_id"])
    assert doc["state"] == "succeeded", json.dumps(doc)
    assert folders_under(pair.inbox / "pushed") == folders_under(pair.data / "set")


def test_a_file_where_an_empty_folder_goes_fails_the_job_and_says_where(
    server: Server, src: Path, tmp_path: Path
) -> None:
    (tmp_path / "dst" / "clash").mkdir()
    (tmp_path / "dst" / "clash" / "b").write_text("a file where the folder b/ goes")
    doc = server.cli_json("transfer", "src:run", "dst:clash", "--empty-folders", "--wait",
                          check=False)  # fmt: skip
    assert doc["state"] == "failed", doc
    assert "creating the empty folder 'clash/b/c/d' on 'dst'" in doc["error"], doc["error"]
    assert (tmp_path / "dst" / "clash" / "b").read_text().startswith("a file")


def test_the_dashboard_form_previews_and_keeps_empty_folders(
    server: Server, src: Path, tmp_path: Path
) -> None:
    from tests.support.browser import Browser, csrf_of

    form = {
        "source_endpoint": "src",
        "source_path": "run",
        "destination_endpoint": "dst",
        "destination_path": "web",
        "empty_folders": "1",
    }
    with Browser(server.url) as browser:
        token = csrf_of(browser.get("/transfers/new").text)
        preview = browser.post(
            "/transfers/new", data={**form, "csrf": token, "action": "preview"}
        ).text
        assert "3 empty folders to create" in preview and "<code>b/c/d/</code>" in preview
        assert 'name="empty_folders" value="1" checked' in preview  # kept as typed
        done = browser.post("/transfers/new", data={**form, "csrf": csrf_of(preview)})
        assert done.status_code == 303, done.text
        job_id = int(done.headers["location"].rsplit("/", 1)[1])
    assert server.wait_job(job_id)["state"] == "succeeded"
    assert folders_under(tmp_path / "dst" / "web") == folders_under(src)


def test_links_below_a_local_source(server: Server, src: Path, tmp_path: Path) -> None:
    """Links are walked as a listing of files walks them: a folder reached twice (here
    through a link back up) is walked once, and a link out of the root is refused."""
    (src / "a" / "up").symlink_to("..")
    doc = server.cli_json("transfer", "src:run", "dst:linked", "--empty-folders", "--wait")
    assert doc["state"] == "succeeded", doc
    kept = folders_under(tmp_path / "dst" / "linked")
    assert "b/c/d" in kept and not any("up" in k for k in kept), kept
    (src / "out").symlink_to(tmp_path)
    refused = server.cli_json("transfer", "src:run", "dst:out", "--empty-folders", "--wait",
                              check=False)  # fmt: skip
    assert refused["state"] == "failed" and "leads outside its root" in refused["error"]
