"""The README's first sections, run as a reader would: every line of the five-minute
tour, the Python client snippet and the ingest section, in that order, against a real
``dataferry serve``. The tour once told readers to give a file endpoint a secret, which
the service refuses: a README no test runs goes stale. Paths under ``/tmp/`` are moved
into the test's own folder and ``localhost:8080`` to the server's port; nothing else
is changed."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import Server

README = Path(__file__).resolve().parents[2] / "README.md"


def fenced(section: str, language: str, nth: int = 0) -> str:
    """The ``nth`` fenced block of ``language`` under the README heading ``section``."""
    text = README.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    blocks = re.findall(rf"```{language}\n(.*?)```", text[start:end], re.S)
    return str(blocks[nth])


def as_here(text: str, server: Server, tmp_path: Path) -> str:
    host = server.url.removeprefix("http://")
    return (
        text.replace("/tmp/", f"{tmp_path}/")
        .replace("http://127.0.0.1:8080", server.url)
        .replace("localhost:8080", host)
    )


def run_shell(block: str, server: Server, tmp_path: Path) -> dict[str, str]:
    """Run each line as its own shell command (``dataferry`` is this interpreter's
    module); every one must succeed. Returns each command's output by its line."""
    prelude = f'dataferry() {{ {shlex.quote(sys.executable)} -m dataferry "$@"; }}\n'
    outputs = {}
    for line in block.splitlines():
        if not line.strip():
            continue
        result = subprocess.run(
            ["bash", "-c", prelude + as_here(line, server, tmp_path)],
            env={**server.env, "COLUMNS": "200"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        said = result.stdout + result.stderr
        assert result.returncode == 0 and "Traceback" not in said, (line, said)
        outputs[line] = result.stdout
    return outputs


def said_by(outputs: dict[str, str], command: str) -> str:
    return next(out for line, out in outputs.items() if line.startswith(command))


@pytest.mark.database_agnostic
def test_the_readme_tour_the_client_snippet_and_ingest_run_as_written(
    server: Server, tmp_path: Path
) -> None:
    tour = run_shell(fenced("Five-minute tour", "sh"), server, tmp_path)
    source = tmp_path / "lab" / "run1" / "raw" / "counts.txt"
    copied = tmp_path / "archive" / "2026" / "run1" / "raw" / "counts.txt"
    assert copied.read_bytes() == source.read_bytes()
    first = said_by(tour, "dataferry transfer lab:run1 archive:2026/run1 --wait")
    assert "copied 1, skipped 0" in first
    assert "copied 0, skipped 1 (unchanged)" in said_by(
        tour, "dataferry transfer lab:run1 archive:2026/run1 --mode sync"
    )
    assert '"state": "succeeded"' in said_by(tour, "dataferry status 1 --json")
    assert "deleted 0" in said_by(
        tour, "dataferry transfer lab:run1 archive:2026/run1 --mode mirror"
    )
    assert "copied 0, skipped 1 (unchanged)" in server.cli("status", "2").stdout
    checked = said_by(tour, "dataferry transfer lab:run1 archive:2026/run1 --mode check")
    assert "same 1, differ 0, missing 0, only at the destination 0" in checked
    assert "sha256:" in said_by(tour, "curl -s localhost:8080/api/v1/jobs/1/files")
    listed = said_by(tour, "dataferry endpoint ls archive:2026/run1 -R").splitlines()
    assert listed[-1].split()[0] == str(source.stat().st_size), listed
    assert listed[-1].endswith("  2026/run1/raw/counts.txt") and listed[0].endswith(
        "2026/run1/raw/"
    )

    snippet = as_here(fenced("Five-minute tour", "python"), server, tmp_path)
    client = subprocess.run(
        [sys.executable, "-c", snippet],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert client.returncode == 0, client.stderr
    assert client.stdout.strip() in {"queued", "running", "succeeded"}
    server.wait_job(6)
    assert (tmp_path / "archive" / "copy" / "raw" / "counts.txt").read_bytes() == (
        source.read_bytes()
    )

    ingest = run_shell(fenced("Ingest (Pacifica-compatible)", "sh"), server, tmp_path)
    shown = said_by(ingest, "dataferry transactions show 7")
    assert "Transactions.project" in shown or "project p1" in shown
    assert "raw/counts.txt" in shown
    assert '"state":"OK"' in said_by(ingest, "curl -s 'localhost:8080/get_state?job_id=7'").replace(
        " ", ""
    )
