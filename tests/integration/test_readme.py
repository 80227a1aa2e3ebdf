"""The README's sections, run as a reader would: every line of the five-minute tour,
the Python client snippet and the ingest section, in that order, then the sinks and
the records sections, against a real ``dataferry serve``. The tour once told readers
to give a file endpoint a secret, which the service refuses: a README no test runs
goes stale. Paths under ``/tmp/`` are moved into the test's own folder and
``localhost:8080`` to the server's port; what a section names outside this machine (a
partner's web service, an application's database, another instance) becomes a local
stand-in, listed in ``STAND_INS``; nothing else is changed. Sections that need what
one machine does not have are in ``NOT_RUN`` with the reason."""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.receiver import Receiver
from tests.support.server import Server
from tests.support.waiting import wait_for

CHECKOUT = Path(__file__).resolve().parents[2]
README = CHECKOUT / "README.md"


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


def commands(block: str) -> list[str]:
    """The block's command lines, a line ending in ``\\`` joined with the next."""
    return [c for c in re.sub(r"\\\n\s*", "", block).splitlines() if c.strip()]


def run_shell(
    block: str,
    server: Server,
    tmp_path: Path,
    here: Callable[[str], str] = lambda line: line,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, str]:
    """Run each command as its own shell command (``dataferry`` is this interpreter's
    module) in ``cwd`` (the test's folder unless told); every one must succeed.
    ``here`` moves what else the section names to this test's stand-ins. Returns
    each command's output by its line."""
    prelude = f'dataferry() {{ {shlex.quote(sys.executable)} -m dataferry "$@"; }}\n'
    outputs = {}
    for line in commands(block):
        result = subprocess.run(
            ["bash", "-c", prelude + here(as_here(line, server, tmp_path))],
            env={**server.env, "COLUMNS": "200", **(env or {})},
            cwd=cwd or tmp_path,
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


#: What the sinks and records sections name that is not on this machine, and the
#: local stand-in each becomes (by the test, below).
STAND_INS = {
    "https://partner.example.org/in": "a Receiver (tests/support/receiver.py)",
    "https://partner.example.org/ws/vettings": "the same Receiver",
    "sqlite:////srv/portal.db": "examples/ala-vettings/schema.sql in the test's folder",
    "http://10.0.0.7:8080": "a second dataferry serve with its own database",
    "SECRET": "the token that second instance is configured with",
    "PARTNER_KEY": "the partner's key: a test value in the commands' environment",
}

#: README sections not run here: (heading, why). The test below keeps the list honest.
NOT_RUN = [
    (
        "Delivering datasets between institutions",
        "two instances at public https URLs, each set up by its own operator "
        "(tests/integration/test_datasets.py runs a provider and a consumer on loopback)",
    ),
    (
        "Remote storage and RPC",
        "an SFTP server and an internet source (tests/integration/test_remote_protocols.py, "
        "test_rpc.py)",
    ),
    (
        "Scale out (Celery + PostgreSQL)",
        "a broker and workers (tests/integration/test_celery.py, make test-celery)",
    ),
]


def section_text(heading: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


@pytest.mark.database_agnostic
def test_the_sections_not_run_are_in_the_readme_and_the_stand_ins_in_the_sections_run() -> None:
    for heading, why in NOT_RUN:
        assert section_text(heading), (heading, why)
    run = section_text("Sinks: push records to a partner") + section_text("Records and replication")
    for shown, stand_in in STAND_INS.items():
        assert shown in run, (shown, stand_in)


@pytest.mark.database_agnostic
def test_the_readme_sinks_and_records_sections_run_as_written(
    server_factory: Any, consumer_db: str, receiver: Receiver, tmp_path: Path
) -> None:
    server: Server = server_factory()
    portal = tmp_path / "portal.db"
    with sqlite3.connect(portal) as conn:
        conn.executescript((CHECKOUT / "examples" / "ala-vettings" / "schema.sql").read_text())
    partner = receiver.url.removesuffix("/vettings")

    def at_partner(line: str) -> str:
        return (
            line.replace("https://partner.example.org/in", f"{partner}/in")
            .replace("https://partner.example.org/ws/vettings", receiver.url)
            .replace("sqlite:////srv/portal.db", f"sqlite:///{portal}")
        )

    # The mapping path is the checkout's, as for a reader with `make run` going there.
    sinks = run_shell(
        fenced("Sinks: push records to a partner", "sh"),
        server,
        tmp_path,
        here=at_partner,
        cwd=CHECKOUT,
        env={"PARTNER_KEY": "k-123"},
    )
    listed = said_by(sinks, "dataferry sink list")
    assert "obs" in listed and "vettings" in listed, listed
    (shown_columns,) = re.findall(r"dataferry sink list +# (.+)", README.read_text())
    for column in shown_columns.split(", "):
        assert column in listed, (column, listed)
    # Both sinks deliver: the collection's record, and the table's three vettings in the
    # example's mapping with the key read from PARTNER_KEY.
    wait_for(lambda: len(receiver.applied()) >= 4, timeout=120)
    (observation,) = [r.document for r in receiver.applied() if "apiKey" not in r.document]
    assert observation["status"] == "new" and observation["record"] == {"species": "emu"}
    vettings = {
        r.document["species"]: r.document for r in receiver.applied() if "apiKey" in r.document
    }
    assert set(vettings) == {"Acacia dealbata", "Eucalyptus regnans", "Banksia serrata"}
    assert vettings["Eucalyptus regnans"]["apiKey"] == "k-123"
    assert vettings["Eucalyptus regnans"]["user"]["authority"] == "ALA"

    site_b: Server = server_factory(
        "b",
        env={"DATAFERRY_TOKENS": '["SECRET"]', "DATAFERRY_TOKEN": "SECRET"},
        db=consumer_db,
    )
    site_b.cli("records", "put", "obs", '{"species": "wombat", "count": 1}')

    def at_site_b(line: str) -> str:
        return line.replace("http://10.0.0.7:8080", site_b.url)

    records = run_shell(fenced("Records and replication", "sh"), server, tmp_path, here=at_site_b)
    assert "emu" in said_by(records, "dataferry records list obs")
    assert "succeeded" in said_by(records, "dataferry sync site-b --wait")
    # Each side now has both records; the export holds them.
    theirs = site_b.cli("records", "list", "obs").stdout
    assert "emu" in theirs and "wombat" in theirs, theirs
    exported = (tmp_path / "obs.csv").read_text()
    assert "emu" in exported and "wombat" in exported, exported
