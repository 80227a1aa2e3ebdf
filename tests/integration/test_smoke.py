"""The quickstart path: a real server, endpoints via the CLI, one transfer."""

from __future__ import annotations

from pathlib import Path

from tests.support.server import Server


def test_quickstart_copy(server: Server, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "a" / "b").mkdir(parents=True)
    dst.mkdir()
    (src / "a" / "b" / "x.txt").write_text("hello")
    (src / "top.bin").write_bytes(b"\0" * 1000)
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", f"file://{dst}")
    doc = server.cli_json("transfer", "src:", "dst:out", "--wait")
    assert doc["state"] == "succeeded", doc
    assert doc["files_done"] == doc["files_total"] == 2
    assert (dst / "out" / "a" / "b" / "x.txt").read_text() == "hello"
    assert (dst / "out" / "top.bin").read_bytes() == b"\0" * 1000
