"""The reference docs' examples, run as a reader would, against real ``dataferry serve``
processes: the commands, HTTP calls, request bodies and RPC snippets of docs/api.md,
transfers.md, rpc.md, ingest.md, replication.md and sinks.md, read from the docs
themselves (as ``test_readme.py`` reads the README), and what the docs show them
answering (a status, a JSON shape, a message) compared with what they answer. A
README that no test ran once told readers to give a file endpoint a secret.

Only what must change is changed: ``/tmp/`` paths move into the test's folder,
``127.0.0.1:8080`` / ``localhost:8080`` / ``host:8080`` become the server's address,
and placeholders (``TOKEN``, a job id the doc calls 7, a partner's URL) become
this test's values. Examples that cannot run on one machine are listed in
``NOT_RUN`` with the reason."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import Server

DOCS = Path(__file__).resolve().parents[2] / "docs"

#: Examples of these docs that are not run here: (doc, the example as the doc spells
#: it, why). ``test_the_examples_left_out_are_in_the_docs`` keeps the list honest.
NOT_RUN = [
    ("ingest.md", "dataferry serve &", "the test's fixture is the server"),
    ("ingest.md", "## BagIt", "tests/integration/test_ingest_bagit_move.py runs bags"),
    ("ingest.md", "`ingest.policy_url`", "an outside policy service (test_ingest_outcomes.py)"),
    ("rpc.md", "## Adding methods", "Python for a capability's install(core), not a call"),
    (
        "rpc.md",
        "`pullOccurrenceFromALA`",
        "the Atlas of Living Australia is on the internet "
        "(tests/integration/test_ala.py drives a fake one)",
    ),
    (
        "rpc.md",
        "Bodies over 10 MiB are refused.",
        "ten MiB per run for a limit tests/integration/test_rpc.py checks",
    ),
    (
        "replication.md",
        "## Python service API",
        "in-process calls with `...` placeholders (tests/integration/test_records.py)",
    ),
    (
        "replication.md",
        "## Discovery",
        "mDNS needs multicast (tests/integration/test_discovery.py)",
    ),
    (
        "replication.md",
        "dataferry peer list [--discovered] [--json]",
        "run without --discovered: discovery is off here",
    ),
    (
        "transfers.md",
        "Another instance's endpoint (`dataferry://`)",
        "remote endpoints (S3, SFTP, "
        "dataferry://) need outside services: tests/integration/test_remote_protocols.py",
    ),
    (
        "transfers.md",
        "dataferry schedule add nightly lab:run1 archive:2026/run1 --mode sync --every 1d",
        "runs fall days apart: tests/integration/test_transfer_schedules.py moves time on",
    ),
    (
        "transfers.md",
        "`kill -9`",
        "crash and resume: tests/integration/test_crash_and_concurrency.py",
    ),
    ("sinks.md", "https://partner.example.org/in", "the partner is a local receiver instead"),
    ("sinks.md", "[`examples/ala-vettings/`]", "tests/integration/test_sinks_example.py"),
    (
        "api.md",
        'words (`"File name too long"`), on the peer file protocol too',
        "a request "
        "that writes a path itself: the peer file protocol (tests/integration/test_peer_files.py); "
        "a transfer's job fails with those words instead (test_bad_input.py)",
    ),
    ("api.md", "`worker [--concurrency N]", "Celery workers need a broker (make test-celery)"),
    (
        "configuration.md",
        "postgresql+psycopg://dataferry@db.example.org/dataferry",
        "the example file is loaded (tests/unit/test_documented_settings.py), not served",
    ),
]


# --- reading the docs -----------------------------------------------------------------


def section(doc: str, heading: str) -> str:
    """The text under ``heading`` (``"## Dry run"``) up to the next heading of the same
    or a higher level."""
    text = "\n" + (DOCS / doc).read_text()
    level = len(heading.split(" ", 1)[0])
    start = text.index(f"\n{heading}\n")
    end = re.compile(rf"\n#{{1,{level}}} ").search(text, start + 1)
    return text[start : end.start() if end else None]


def fenced(doc: str, heading: str, language: str, nth: int = 0) -> str:
    """The ``nth`` fenced block of ``language`` under ``heading``."""
    blocks = re.findall(rf"```{language}\n(.*?)```", section(doc, heading), re.S)
    return str(blocks[nth])


def indented(doc: str, heading: str, nth: int = 0) -> list[str]:
    """The commands of the ``nth`` indented (four-space) block under ``heading``, a
    command continued with ``\\`` joined into one line."""
    blocks: list[list[str]] = []
    in_fence = False
    previous = ""
    for line in section(doc, heading).splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        elif not in_fence and line.startswith("    ") and line.strip():
            if not previous.strip():
                blocks.append([])
            if blocks and (previous.startswith("    ") or not previous.strip()):
                blocks[-1].append(line[4:])
        previous = "" if in_fence else line
    return joined(blocks[nth])


def joined(lines: list[str]) -> list[str]:
    commands: list[str] = []
    pending = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        commands.append(pending + line.strip() if pending else line.strip())
        pending = ""
    return [c for c in commands if c]


def commands_of(block: str) -> list[str]:
    """The commands of a fenced shell block: a line that does not begin with a space
    begins one; indented lines continue it (after a ``\\``, or inside a quoted value
    that spans lines), kept as written for the shell."""
    commands: list[str] = []
    for line in block.splitlines():
        if line.strip() and not line[0].isspace():
            commands.append(line)
        elif line.strip():
            commands[-1] += "\n" + line
    return commands


def table(doc: str, heading: str) -> list[list[str]]:
    """The rows of the first table under ``heading``, each a list of its cells."""
    rows = []
    for line in section(doc, heading).splitlines():
        if line.startswith("| ---"):
            continue
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])
            rows.append([c.strip() for c in cells])
        elif rows:
            break
    return rows[1:]


def json_keys(text: str) -> set[str]:
    """The top-level keys of the first object a doc shows in ``{"a", "b": [...], "c"}``:
    the quoted names that follow ``{`` or ``,`` at its first level (not the values)."""
    depth = 0
    keys = set()
    for m in re.finditer(r'[{}\[\]]|([{,]\s*)?"(\w+)"', text):
        token = m.group(0)
        if token in "{[":
            depth += 1
        elif token in "}]":
            depth -= 1
            if depth == 0:
                break
        elif depth == 1 and (m.group(1) or text[m.start() - 1] in "{,"):
            keys.add(m.group(2))
    return keys


def same_shape(shown: dict[str, Any], actual: dict[str, Any], where: str) -> None:
    """``actual`` has the keys the doc shows, each of the shown value's JSON type (a
    null allowed where the doc says ``|null``, a float where it shows an integer)."""
    assert set(actual) == set(shown), f"{where}: keys {sorted(actual)} != {sorted(shown)}"
    for key, value in shown.items():
        got = actual[key]
        if got is None or isinstance(value, bool) or isinstance(got, bool):
            assert got is None or type(got) is type(value), (where, key, got)
        elif isinstance(value, int | float):
            assert isinstance(got, int | float), (where, key, got)
        else:
            assert type(got) is type(value), (where, key, got)


# --- running them ---------------------------------------------------------------------


def as_here(text: str, server: Server, tmp_path: Path) -> str:
    host = server.url.removeprefix("http://")
    return (
        text.replace("/tmp/", f"{tmp_path}/")
        .replace("http://127.0.0.1:8080", server.url)
        .replace("localhost:8080", host)
        .replace("host:8080", host)
    )


def shell(
    command: str,
    server: Server,
    tmp_path: Path,
    exit_code: int = 0,
    env: dict[str, str] | None = None,
    substitute: bool = True,
    stdout: bool = False,
) -> str:
    """Run one documented command line (``dataferry`` is this interpreter's module) in
    ``tmp_path``; it must exit ``exit_code`` without a traceback. Returns its output.
    ``substitute=False``: the caller put this test's paths in already; ``stdout``:
    return only what went there (curl writes its progress meter to stderr)."""
    prelude = f'dataferry() {{ {shlex.quote(sys.executable)} -m dataferry "$@"; }}\n'
    result = subprocess.run(
        ["bash", "-c", prelude + (as_here(command, server, tmp_path) if substitute else command)],
        env={**server.env, "COLUMNS": "200", **(env or {})},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = result.stdout + result.stderr
    assert result.returncode == exit_code and "Traceback" not in said, (command, said)
    return result.stdout if stdout else said


def api(server: Server) -> httpx.Client:
    token = server.env.get("DATAFERRY_TOKEN", "")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=60)


def add_endpoints(server: Server, **folders: Path | tuple[Path, dict[str, str]]) -> None:
    """Register endpoints over REST (the CLI's start-up time is spent on the examples)."""
    with api(server) as c:
        for name, given in folders.items():
            folder, options = given if isinstance(given, tuple) else (given, {})
            answer = c.post(
                "/api/v1/endpoints",
                json={"name": name, "url": f"file://{folder}", "options": options},
            )
            assert answer.status_code == 201, answer.text


def latest_job(server: Server) -> dict[str, Any]:
    with api(server) as c:
        job: dict[str, Any] = c.get("/api/v1/jobs", params={"limit": 1}).json()["jobs"][0]
        return job


def make_tree(root: Path, files: dict[str, bytes | None]) -> Path:
    """Files (bytes) and empty folders (None) under ``root``."""
    for name, data in files.items():
        path = root / name
        if data is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return root


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


# --- docs/api.md ----------------------------------------------------------------------

TOKEN = "docs-token-0123456789"


@pytest.fixture
def token_server(server_factory: Any) -> Server:
    """A server with ``tokens`` configured, its CLI sending the token."""
    env = {"DATAFERRY_TOKENS": json.dumps([TOKEN]), "DATAFERRY_TOKEN": TOKEN}
    srv: Server = server_factory("tok", env=env)
    return srv


def job_document_shown() -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(fenced("api.md", "## Job document", "json"))
    return shown


def documented_errors() -> dict[int, str]:
    """``{status: code}`` from api.md's "Errors are ..." paragraph."""
    text = (DOCS / "api.md").read_text()
    paragraph = text[text.index("Errors are") : text.index("## Job document")]
    named: dict[int, str] = {}
    for status, code in re.findall(r"\b([1-5]\d\d)\s+([a-z_]+)\b", paragraph):
        named.setdefault(int(status), code)  # the list comes first; later "422 with ..."
    return named


@pytest.mark.database_agnostic
def test_api_md_routes_answers_and_errors(token_server: Server, tmp_path: Path) -> None:
    srv = token_server
    make_tree(tmp_path / "lab", {"run1/a.txt": b"alpha\n", "run1/raw/b.csv": b"1,2\n"})
    (tmp_path / "archive").mkdir()
    (tmp_path / "readonly").mkdir()
    add_endpoints(
        srv,
        lab=tmp_path / "lab",
        archive=tmp_path / "archive",
        shelf=(tmp_path / "readonly", {"read_only": "true"}),
    )
    shown_job = job_document_shown()
    with api(srv) as c:
        first = c.post("/api/v1/transfers", json={"source": "lab:run1", "destination": "archive:x"})
        assert first.status_code == 202, first.text
        done = srv.wait_job(first.json()["job_id"])
        same_shape(shown_job, done, "api.md job document")
        assert done["state"] in shown_text_states()

        # Each row of the route tables, called with the body it names.
        ids = {"{name}": "scratch", "{id}": str(done["job_id"])}
        transfer = {
            "source": "lab:run1",
            "destination": "archive:y",
            "mode": "mirror",
            "checksum": "sha256",
            "overwrite": "if-different",
            "expected_checksum": None,
            "include": ["*.txt", "raw/"],
            "exclude": ["*.tmp"],
            "compare": "size-mtime",
            "empty_folders": False,
            "min_size": 0,
            "max_size": 2**40,
            "min_age": None,
            "max_age": None,  # with an age limit the preview adds reference_time
        }
        bodies: dict[str, Any] = {
            "POST /api/v1/endpoints": {
                "name": "scratch",
                "url": f"file://{tmp_path}/archive",
                "options": {},
                "secrets": {},
            },
            "POST /api/v1/transfers": transfer,
            "POST /api/v1/transfers/preview": transfer,
            "POST /api/v1/jobs/prune": {"older_than_days": 36500},
            # a first run far ahead: none is made while the rows are called
            "POST /api/v1/schedules": {
                "name": "scratch",
                "transfer": transfer,
                "every": 86400,
                "start": "2100-01-01T00:00:00Z",
            },
        }
        # Documented body fields are the ones the example body sends.
        for row in table("api.md", "## Endpoints") + table("api.md", "## Transfers and jobs"):
            route = row[0].strip("`")
            documented_body = json_keys(row[1]) if row[1].startswith("`{") else set()
            if documented_body:
                assert documented_body == set(bodies[route]), route
        expected = {
            # cancel and retry of a finished, succeeded job: the 409 the table names
            "POST /api/v1/jobs/{id}/cancel": 409,
            "POST /api/v1/jobs/{id}/retry": 409,
        }
        rows = (
            table("api.md", "## Endpoints")
            + table("api.md", "## Transfers and jobs")
            + table("api.md", "## Ingest and transactions")
        )
        # DELETE of the endpoint runs last, after every row that reads it.
        rows.sort(key=lambda r: r[0].startswith("`DELETE"))
        for route_cell, _, answer in rows:
            route = route_cell.strip("`")
            method, path = route.split(" ", 1)
            if "{file_id}" in path or "/transactions/" in path:
                continue  # run with the ingest doc's transaction, in test_ingest_md
            for placeholder, value in ids.items():
                path = path.replace(placeholder, value)
            response = c.request(method, path, json=bodies.get(route))
            status = expected.get(route) or (int(answer[:3]) if answer[:3].isdigit() else 200)
            assert response.status_code == status, (route, response.status_code, response.text)
            assert str(status) in answer or status == 200, (route, answer)
            if status >= 400:
                assert set(response.json()) == {"error", "detail"}, response.text
            elif "job document" in answer:
                same_shape(shown_job, response.json(), route)
            elif "`{" in answer:
                shown = json_keys(answer[answer.index("`{") : answer.index("}`") + 1])
                assert shown <= set(response.json()), (route, response.json())
        preview = c.post("/api/v1/transfers/preview", json=transfer).json()
        assert json_keys(rpc_preview_answer()) == set(preview), preview

        # The error document, with each status the paragraph names.
        errors = documented_errors()
        assert set(errors) == {400, 401, 403, 404, 405, 409, 422}, errors
        answers = {
            400: c.post(
                "/api/v1/transfers",
                content=b'{"source": "\xff"}',
                headers={"Content-Type": "application/json"},
            ),
            401: httpx.get(f"{srv.url}/api/v1/jobs"),
            403: c.post("/api/v1/transfers", json={"source": "lab:run1", "destination": "shelf:"}),
            404: c.get("/api/v1/no/such/route"),
            405: c.put("/api/v1/jobs"),
            409: c.post(f"/api/v1/jobs/{done['job_id']}/cancel"),
            422: c.post(
                "/api/v1/transfers",
                json={"source": "lab:run1", "destination": "archive:z", "mode": "teleport"},
            ),
        }
        for status, response in answers.items():
            assert response.status_code == status, (status, response.text)
            assert response.json()["error"] == errors[status], (status, response.text)
            assert set(response.json()) == {"error", "detail"}
        # What a path no route has and a method a path does not take say, word for word.
        errors_text = " ".join(section("api.md", "# REST API and CLI").split())
        unrouted = [
            *re.findall(r'"detail": "(no such API path: [^"]+)"', errors_text),
            *re.findall(r'`"(no such path: [^"]+)"`', errors_text),
        ]
        assert len(unrouted) == 2, errors_text
        for message in unrouted:
            method, path = message.split(": ", 1)[1].split(" ")[:2]
            response = c.request(method, path)
            assert response.status_code == 404, response.text
            assert response.json() == {"error": "not_found", "detail": message}
        (not_allowed,) = re.findall(r'"detail": "(method [^"]+)"', errors_text)
        method, path, takes = re.findall(
            r"method (\S+) is not allowed on (\S+); it takes (.+)", not_allowed
        )[0]
        response = c.request(method, path)
        assert response.status_code == 405, response.text
        assert response.json() == {"error": "method_not_allowed", "detail": not_allowed}
        assert response.headers["allow"] == takes
        (no_page,) = re.findall(r"`(no such page: [^`]+)`", errors_text)
        page = httpx.get(srv.url + no_page.split(": ")[1], headers={"Accept": "text/html"})
        assert page.status_code == 404 and no_page in page.text, page.text
        assert page.headers["content-type"].startswith("text/html")
        (route_404,) = re.findall(r'A 404 of a route \(`"([^"]+)"`\)', errors_text)
        assert c.get("/api/v1/jobs/999").json()["detail"] == route_404
        surrogate = c.post(
            "/api/v1/transfers",
            content=b'{"source": "\\ud800", "destination": "archive:z"}',
            headers={"Content-Type": "application/json"},
        )
        assert surrogate.status_code == 422
        assert "a lone surrogate" in surrogate.json()["detail"]
        assert "is not Unicode text" in surrogate.json()["detail"]
        waited = c.get(f"/api/v1/jobs/{done['job_id']}", params={"wait": 61})
        assert waited.status_code == 422  # "422 outside 0-60"
        unknown_kind = c.get("/api/v1/jobs", params={"kind": "nope"})
        assert unknown_kind.status_code == 422 and "transfer" in unknown_kind.text

        # /openapi.json documents the error shape as every operation's 4XX answer.
        spec = httpx.get(f"{srv.url}/openapi.json").json()
        assert "Error" in spec["components"]["schemas"]
        metrics = httpx.get(f"{srv.url}/metrics").text
        for name in re.findall(r"`(dataferry_[a-z_]+)", section("api.md", "# REST API and CLI")):
            assert name in metrics, name

        # What the tables say the per-file rows and the detail hold.
        rows_text = {r[0].strip("`"): r[2] for r in table("api.md", "## Transfers and jobs")}
        files = c.get(f"/api/v1/jobs/{done['job_id']}/files").json()["files"]
        named = re.findall(r"(\w+)(?: \(|,|$)", rows_text["GET /api/v1/jobs/{id}/files"])
        assert {"path", "size", "mtime", "state", "checksum", "error"} <= set(named)
        assert {"path", "size", "mtime", "state", "checksum", "error"} <= set(files[0]), files
        detail = c.get(f"/api/v1/jobs/{done['job_id']}/detail").json()
        assert {"params", "result", "worker"} <= set(detail) and set(shown_job) <= set(detail)
        assert c.post("/api/v1/jobs/prune", json={"older_than_days": 36501}).status_code == 422
        listed = c.get("/api/v1/jobs").json()["jobs"]  # newest first
        assert [j["job_id"] for j in listed] == sorted((j["job_id"] for j in listed), reverse=True)
        # Values the database or the file system cannot hold: 422 in the doc's words.
        intro = " ".join(section("api.md", "# REST API and CLI").split())
        out_of_range = c.get(f"/api/v1/jobs/{2**64}")
        assert out_of_range.status_code == 422, out_of_range.text
        assert (
            out_of_range.json()["detail"]
            == re.findall(r'`"detail": "(a number is out of the range[^"]+)"`', intro)[0]
        )

    # The CLI paragraph: refusals as it words them.
    cli = section("api.md", "## CLI")
    said = shell("dataferry endpoint add $'\\xff' file:///tmp/x", srv, tmp_path, exit_code=2)
    (not_utf8,) = re.findall(r"`(error: name [^`]+)`", cli)
    assert not_utf8 in said, said
    said = shell("dataferry endpoint remove ../sinks/s1", srv, tmp_path, exit_code=1)
    (no_route,) = re.findall(r"\(`(error: no such API path[^`]+)`\)", " ".join(cli.split()))
    assert said.strip() == no_route, said
    # configuration.md: serve on a port in use is one line and exit 1.
    busy = shown_message("configuration.md", "# Configuration", "cannot listen on")
    said = shell(f"dataferry serve --port {srv.port}", srv, tmp_path, exit_code=1)
    assert busy.replace("8080", str(srv.port)) in said, said


def shown_text_states() -> set[str]:
    text = section("api.md", "## Job document")
    states = re.search(r"`state` is one of `([^`]+)`", text)
    assert states is not None
    return {s.strip() for s in states.group(1).split(",")}


def rpc_preview_answer() -> str:
    for row in table("rpc.md", "## Methods"):
        if row[0] == "`transfers.preview`":
            return row[2]
    raise AssertionError("rpc.md has no transfers.preview row")


# --- docs/transfers.md ----------------------------------------------------------------

RUN7 = {
    "run7/raw/a.csv": b"1,2,3\n",
    "run7/raw/deep/b.csv": b"4,5\n",
    "run7/notes.txt": b"notes\n",
    "run7/scratch.tmp": b"tmp\n",
    "run7/cache/blob.bin": b"\0" * 64,
    "run7/empty/inner": None,
}


@pytest.mark.database_agnostic
def test_transfers_md_commands_and_what_they_say(server: Server, tmp_path: Path) -> None:
    lab = make_tree(tmp_path / "lab", RUN7)
    archive = tmp_path / "archive"
    archive.mkdir()
    add_endpoints(server, lab=lab, archive=archive)

    choosing = indented("transfers.md", "## Choosing files")
    assert len(choosing) == 2
    shell(choosing[0], server, tmp_path)
    server.wait_job(1)
    assert tree(archive / "2026" / "run7") == {"raw/a.csv", "raw/deep/b.csv", "notes.txt"}
    said = shell(choosing[1], server, tmp_path)
    assert "copied 2" in said
    assert tree(archive / "csv") == {"raw/a.csv", "raw/deep/b.csv"}

    # Dry run of a mirror: a file only at the destination is what it would delete.
    (archive / "2026" / "run7" / "stale.txt").write_bytes(b"old\n")
    (dry,) = indented("transfers.md", "## Dry run")
    said = shell(dry, server, tmp_path)
    assert "stale.txt" in said
    assert (archive / "2026" / "run7" / "stale.txt").exists()  # a dry run writes nothing

    # Checking a copy: the whole tree copied first, both documented checks agree.
    with api(server) as c:
        mirror = c.post(
            "/api/v1/transfers",
            json={"source": "lab:run7", "destination": "archive:2026/run7", "mode": "mirror"},
        )
    assert server.wait_job(mirror.json()["job_id"])["state"] == "succeeded"
    assert not (archive / "2026" / "run7" / "stale.txt").exists()
    for command in indented("transfers.md", "## Checking a copy"):
        said = shell(command, server, tmp_path)
        assert "same 5, differ 0, missing 0, only at the destination 0" in said, said

    # The failure message the section shows, from the case it describes.
    make_tree(
        tmp_path / "lab",
        {"cmp/same1": b"s", "cmp/same2": b"t", "cmp/differs": b"new", "cmp/missing": b"m"},
    )
    make_tree(
        archive,
        {"cmp/same1": b"s", "cmp/same2": b"t", "cmp/differs": b"old", "cmp/x1": b"", "cmp/x2": b""},
    )
    text = section("transfers.md", "## Checking a copy").replace("\n", " ")
    shown = re.search(r"`(check: [^`]+)`", text)
    assert shown is not None
    said = shell("dataferry transfer lab:cmp archive:cmp --mode check --wait", server, tmp_path, 1)
    job = latest_job(server)
    assert job["error"] == shown.group(1), job["error"]
    assert "x1" in said and "x2" in said

    # Empty folders: `transfer --wait` says `empty folders N`.
    said = shell(
        "dataferry transfer lab:run7 archive:withempty --empty-folders --wait", server, tmp_path
    )
    assert "empty folders 1" in said
    assert (archive / "withempty" / "empty" / "inner").is_dir()
    # ... and a file where one must go fails the job naming it, as the doc shows.
    make_tree(lab, {"out/b/c/d": None})
    make_tree(archive, {"out/b/c": b"a file"})
    folders_text = section("transfers.md", "## Empty folders").replace("\n", " ")
    shown_error = re.search(r"\(`(creating the empty folder [^`]+)`\)", folders_text)
    assert shown_error is not None
    shell("dataferry transfer lab:out archive:out --empty-folders --wait", server, tmp_path, 1)
    error = latest_job(server)["error"]
    assert error == shown_error.group(1), error

    # Old jobs: the command named in the section runs.
    (prune,) = re.findall(
        r"`(dataferry\s+prune-jobs[^`]*)`", section("transfers.md", "## Old jobs")
    )
    said = shell(" ".join(prune.split()), server, tmp_path)
    assert "0" in said

    # "Where things land": a single file goes into an existing folder, else becomes it.
    with api(server) as c:
        for destination in ("archive:csv", "archive:renamed.csv"):
            job = c.post(
                "/api/v1/transfers",
                json={"source": "lab:run7/raw/a.csv", "destination": destination},
            ).json()
            assert server.wait_job(job["job_id"])["state"] == "succeeded"
    assert (archive / "csv" / "a.csv").read_bytes() == RUN7["run7/raw/a.csv"]
    assert (archive / "renamed.csv").read_bytes() == RUN7["run7/raw/a.csv"]

    # The submit table: statuses of refused requests.
    rows = {row[0]: int(row[1]) for row in table("transfers.md", "## Submitting")}
    with api(server) as c:
        for problem, body in {
            "unknown endpoint": {"source": "nowhere:x", "destination": "archive:q"},
            "missing source path": {"source": "lab:absent", "destination": "archive:q"},
            "`..`, absolute path, backslash or control character": {
                "source": "lab:../x",
                "destination": "archive:q",
            },
            "source and destination overlap": {"source": "lab:run7", "destination": "lab:run7/in"},
        }.items():
            response = c.post("/api/v1/transfers", json=body)
            assert response.status_code == rows[problem], (problem, response.text)


# --- docs/rpc.md ----------------------------------------------------------------------


def rpc_method_names() -> set[str]:
    """Every method rpc.md names: its table's, and the records and replication ones its
    paragraph spells ``records.put|get|delete|changes``."""
    names = set()
    for row in table("rpc.md", "## Methods"):
        names |= set(re.findall(r"`([A-Za-z_.]+)`", row[0]))
    for family, members in re.findall(r"`(\w+)\.(\w+(?:\|\w+)+)`", section("rpc.md", "## Methods")):
        names |= {f"{family}.{m}" for m in members.split("|")}
    return names


def jsonrpc(server: Server, body: Any, token: str = TOKEN) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{server.url}/jsonrpc",
        content=content,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=60,
    )


def answer_shape(method: str) -> set[str]:
    for row in table("rpc.md", "## Methods"):
        if f"`{method}`" in row[0]:
            return json_keys(row[2][row[2].index("`{") :])
    raise AssertionError(f"rpc.md has no row for {method}")


@pytest.mark.database_agnostic
def test_rpc_md_xmlrpc_and_jsonrpc_examples(token_server: Server, tmp_path: Path) -> None:
    import xmlrpc.client

    srv = token_server
    make_tree(tmp_path / "lab", {"run1/a.txt": b"alpha\n"})
    (tmp_path / "archive").mkdir()
    add_endpoints(srv, lab=tmp_path / "lab", archive=tmp_path / "archive")

    # The authentication snippet, as written: HTTP Basic with the token as password.
    snippet = fenced("rpc.md", "## Authentication", "python").replace("TOKEN", TOKEN)
    scope: dict[str, Any] = {}
    exec(as_here(snippet, srv, tmp_path), scope)
    mover: Any = scope["mover"]
    listed = set(mover.system.listMethods())
    assert rpc_method_names() - listed == set()
    assert mover.system.methodHelp("jobs.get")

    # The data mover's calls and the statuses of the table.
    moved = mover.move("lab:run1", "archive:moved")
    assert set(moved) == answer_shape("move") and moved["status"] == "PENDING", moved
    status = mover.check_move_status(moved["id"])
    assert set(status) <= {"id", "status", "reason"}
    assert status["status"] in {"PENDING", "IN_PROGRESS", "COMPLETED"}
    srv.wait_job(moved["id"])
    assert mover.checkMoveStatus(moved["id"]) == {"id": moved["id"], "status": "COMPLETED"}
    assert (tmp_path / "archive" / "moved" / "run1" / "a.txt").read_bytes() == b"alpha\n"
    assert mover.check_move_status(999999) == {"status": "REJECTED", "reason": "Job does not exist"}
    reasons = section("rpc.md", "### The data mover's calls").replace("\n", " ")
    for source, destination, reason in [
        ("", "archive:x", "missing source"),
        ("lab:run1", "", "missing destination"),
        ("lab:run1", "x:y", "unknown destination endpoint 'x'"),
        ("x:a", "archive:b", "unknown source endpoint 'x'"),
        ("gopher://h/a", "archive:b", "unknown URL scheme 'gopher'"),
        ("file:///etc/hostname", "archive:b", "file URLs are not accepted"),
    ]:
        assert f"`{reason.replace('gopher', 'x')}`" in reasons, reason
        refused = mover.move(source, destination)
        assert refused["status"] == "REJECTED", refused
        assert reason in refused["reason"], (reason, refused)

    # The other methods' answers, in the shapes the table shows.
    job = mover.jobs.get(moved["id"])
    same_shape(job_document_shown(), job, "jobs.get")
    assert set(mover.jobs.list()) == answer_shape("jobs.list")
    assert set(mover.jobs.prune(36500)) == answer_shape("jobs.prune")
    preview = mover.transfers.preview("lab:run1", "archive:p")
    assert set(preview) == answer_shape("transfers.preview")
    submitted = mover.transfers.submit("lab:run1", "archive:s")
    same_shape(job_document_shown(), submitted, "transfers.submit")
    listed_endpoints = mover.endpoints.list()
    assert {e["name"] for e in listed_endpoints} >= {"lab", "archive"}

    # A wrong token: HTTP 401, ProtocolError on XML-RPC, -32001 on JSON-RPC.
    with pytest.raises(xmlrpc.client.ProtocolError) as refused_call:
        xmlrpc.client.ServerProxy(f"{srv.url}/RPC2").jobs.list()
    assert refused_call.value.errcode == 401
    denied = jsonrpc(srv, {"jsonrpc": "2.0", "id": 1, "method": "jobs.list"}, token="wrong")
    assert denied.status_code == 401 and denied.json()["error"]["code"] == -32001

    # The errors table, each situation on both doors.
    rows = table("rpc.md", "## Errors")
    calls: dict[str, tuple[bytes | Any, bytes | None]] = {
        "body not parseable": (b"{", b"<methodCall><oops"),
        "not a valid call object": ([], None),
        "unknown method": (
            {"jsonrpc": "2.0", "id": 1, "method": "no.such"},
            xmlrpc.client.dumps((), "no.such").encode(),
        ),
        "wrong parameters": (
            {"jsonrpc": "2.0", "id": 1, "method": "jobs.get", "params": ["x"]},
            xmlrpc.client.dumps(("x",), "jobs.get").encode(),
        ),
        "any other dataferry error": (
            {"jsonrpc": "2.0", "id": 1, "method": "jobs.get", "params": [999999]},
            xmlrpc.client.dumps((999999,), "jobs.get").encode(),
        ),
    }
    covered = 0
    for situation, xml_code, json_code in rows:
        match = next((k for k in calls if situation.startswith(k)), None)
        if match is None:
            assert situation == "unexpected", situation  # nothing a reader can call
            continue
        covered += 1
        json_body, xml_body = calls[match]
        answer = jsonrpc(srv, json_body).json()
        assert answer["error"]["code"] == int(json_code.split()[0].rstrip(",")), answer
        if "`data.error` is its code" in json_code:
            assert answer["error"]["data"]["error"] == "not_found", answer
        if xml_body is not None:
            fault = httpx.post(
                f"{srv.url}/RPC2", content=xml_body, auth=("dataferry", TOKEN), timeout=60
            )
            with pytest.raises(xmlrpc.client.Fault) as raised:
                xmlrpc.client.loads(fault.content)
            assert raised.value.faultCode == int(xml_code.split()[0].rstrip(",")), situation
            if "`faultString` starts with its code" in xml_code:
                assert raised.value.faultString.startswith("not_found"), raised.value
    assert covered == len(calls)

    # The door's notes: system.methodSignature; integers past 32 bits travel as <i8>
    # (both ways), absent values as <nil/> (jobs.list's state and kind filters).
    assert mover.system.methodSignature("jobs.get") is not None
    i8_call = (
        "<?xml version='1.0'?><methodCall><methodName>jobs.prune</methodName><params>"
        f"<param><value><i8>{2**33}</i8></value></param></params></methodCall>"
    )
    big = httpx.post(f"{srv.url}/RPC2", content=i8_call, auth=("dataferry", TOKEN), timeout=60)
    with pytest.raises(xmlrpc.client.Fault) as out_of_range:  # past jobs.prune's 36500 days
        xmlrpc.client.loads(big.content)
    assert out_of_range.value.faultCode == -32602, out_of_range.value
    mover.records.put("obs", {"species": "emu"})
    feed = httpx.post(
        f"{srv.url}/RPC2",
        content=xmlrpc.client.dumps(("obs",), "records.changes").encode(),
        auth=("dataferry", TOKEN),
        timeout=60,
    )
    assert b"<i8>" in feed.content, feed.text[:800]  # the feed's cursor: wall ms * 1000
    submitted_doc = httpx.post(
        f"{srv.url}/RPC2",
        content=xmlrpc.client.dumps(("lab:run1", "archive:n"), "transfers.submit").encode(),
        auth=("dataferry", TOKEN),
        timeout=60,
    )
    assert b"<nil/>" in submitted_doc.content, submitted_doc.text[:800]  # bytes_total: null
    # A cancelled move is FAILED with the reason "cancelled" (the Statuses section).
    cancelled = mover.move("lab:run1", "archive:cancelled")
    try:
        mover.jobs.cancel(cancelled["id"])
    except xmlrpc.client.Fault as finished:  # it was quicker than the cancel: a conflict
        assert finished.faultString.startswith("conflict"), finished
    srv.wait_job(cancelled["id"])
    after = mover.check_move_status(cancelled["id"])
    if after["status"] != "COMPLETED":
        assert after == {"id": cancelled["id"], "status": "FAILED", "reason": "cancelled"}
    # "batches (up to 1000 calls)": one more is refused.
    call = {"jsonrpc": "2.0", "id": 1, "method": "system.listMethods"}
    assert isinstance(jsonrpc(srv, [call] * 1000).json(), list)
    too_many = jsonrpc(srv, [call] * 1001).json()
    assert too_many["error"]["code"] == -32600, too_many

    # "a parameter of the wrong type is -32602 naming the parameter"
    methods = " ".join(section("rpc.md", "## Adding methods (for other capabilities)").split())
    assert "`uid: Input should be a valid string`" in methods
    wrong_type = jsonrpc(
        srv,
        {"jsonrpc": "2.0", "id": 1, "method": "records.get", "params": ["obs", 42]},
    ).json()
    assert wrong_type["error"]["code"] == -32602
    assert "uuid: Input should be a valid string" in wrong_type["error"]["message"], wrong_type

    # Notifications: no answer; a batch of notifications gets 204.
    note = {"jsonrpc": "2.0", "method": "jobs.list"}
    assert jsonrpc(srv, [note, note]).status_code == 204
    both = jsonrpc(srv, {"jsonrpc": "2.0", "id": 7, "method": "jobs.list", "params": {"limit": 1}})
    assert both.json()["id"] == 7 and both.json()["result"]["limit"] == 1


# --- docs/ingest.md -------------------------------------------------------------------


def with_id(command: str, job_id: int) -> str:
    """The doc calls its transaction 7; this server's has its own id."""
    return re.sub(r"\b7\b", str(job_id), command)


@pytest.mark.database_agnostic
def test_ingest_md_quick_start_state_document_and_metadata_example(
    server: Server, tmp_path: Path
) -> None:
    import hashlib
    import io
    import tarfile

    make_tree(tmp_path, {"run-42/raw/counts.txt": b"1\n2\n3\n", "run-43/notes.txt": b"n\n"})
    quick = indented("ingest.md", "## Quick start", 0)
    assert quick[0] == "dataferry serve &"  # in NOT_RUN: the fixture is the server
    said = {}
    first_id = 1  # the first job of this server's fresh database
    for command in quick[1:]:
        said[command] = shell(with_id(command, first_id), server, tmp_path)
    wait_json = next(c for c in quick if "--json" in c)
    doc = json.loads(said[wait_json][said[wait_json].index("{") :])
    same_shape(job_document_shown(), doc, "ingest --json")
    # "Symbolic links are refused" by bundle create.
    (tmp_path / "run-44").mkdir()
    (tmp_path / "run-44" / "link").symlink_to(tmp_path / "run-42" / "raw" / "counts.txt")
    refused = shell("dataferry bundle create ./run-44 -o run-44.tar", server, tmp_path, 1)
    assert "link" in refused and not (tmp_path / "run-44.tar").exists(), refused
    assert doc["kind"] == "ingest" and doc["state"] == "succeeded"
    shown = said[next(c for c in quick if c.startswith("dataferry transactions show"))]
    assert "p1" in shown and "raw/counts.txt" in shown and "run-42" in shown

    # The same with curl; the state document in the shape the doc shows.
    upload, state = indented("ingest.md", "## Quick start", 1)
    answer = json.loads(shell(upload, server, tmp_path))
    shown_state = json.loads(fenced("ingest.md", "## Doors (Pacifica-compatible)", "json"))
    same_shape(shown_state, answer, "POST /upload")
    server.wait_job(answer["job_id"])
    final = json.loads(shell(with_id(state, answer["job_id"]), server, tmp_path))
    same_shape(shown_state, final, "GET /get_state")
    assert final["state"] == "OK" and final["complete"] is True, final
    assert final["task"] == shown_state["task"] and final["task_percent"] == "100.0"
    missing = httpx.get(f"{server.url}/get_state", params={"job_id": 999999})
    assert missing.status_code == 404 and missing.text

    # The metadata example, as a bundle: its hash is the sha1 of the five bytes "hello".
    entries = json.loads(fenced("ingest.md", "## Metadata format (`metadata.txt`)", "json"))
    files = [e for e in entries if e["destinationTable"] == "Files"]
    (entry,) = files
    data = b"hello"
    assert hashlib.sha1(data).hexdigest() == entry["hashsum"] and len(data) == entry["size"]
    body = io.BytesIO()
    with tarfile.open(fileobj=body, mode="w") as tar:
        for name, content in [
            (f"data/{entry['subdir']}/{entry['name']}", data),
            ("metadata.txt", json.dumps(entries).encode()),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    uploaded = httpx.post(f"{server.url}/upload", content=body.getvalue(), timeout=60).json()
    tid = uploaded["job_id"]
    assert server.wait_job(tid)["state"] == "succeeded"
    archived = server.home / "archive" / str(tid) / entry["subdir"] / entry["name"]
    assert archived.read_bytes() == data  # <archive>/<id>/<subdir>/<name>

    # The REST lines of "Archive and metadata", and api.md's transaction rows.
    with api(server) as c:
        for line in indented("ingest.md", "## Archive and metadata"):
            if line.startswith("dataferry "):
                shown_tx = shell(
                    with_id(line.replace(" ID [--json]", " 7 --json"), tid), server, tmp_path
                )
                assert json.loads(shown_tx)["files"], shown_tx
                continue
            method, path = line.split("#")[0].split()
            assert method == "GET", line
            transaction = c.get(path.replace("{id}", str(tid)).replace("{file_id}", "0"))
            if "{file_id}" in path:
                file_id = c.get(f"/api/v1/transactions/{tid}").json()["files"][0]["file_id"]
                transaction = c.get(
                    path.replace("{id}", str(tid)).replace("{file_id}", str(file_id))
                )
                assert transaction.content == data
            else:
                assert transaction.status_code == 200, (path, transaction.text)
        listing = c.get("/api/v1/transactions").json()
        row = next(
            r for r in table("api.md", "## Ingest and transactions") if "transactions`" in r[0]
        )
        assert json_keys(row[2]) == set(listing)
        assert listing["transactions"][0]["transaction_id"] == tid  # newest first
        detail = c.get(f"/api/v1/transactions/{tid}").json()
        assert detail["project"] == "p1" and detail["submitter"] == "10"

    # "The same job is a normal job everywhere else".
    shell(f"dataferry status {tid}", server, tmp_path)
    listed = server.cli_json("jobs", "--kind", "ingest")
    assert tid in {j["job_id"] for j in listed}
    assert all(j["kind"] == "ingest" for j in listed)


@pytest.mark.database_agnostic
def test_ingest_md_uploads_refused_at_the_door_and_bundles_refused_later(
    server_factory: Any, tmp_path: Path
) -> None:
    """The Doors section's refusals, with the statuses and messages it shows. It once
    said a body that stops mid-stream answers 400: the uploader is gone by then, and
    no answer reaches it (the job's state is where the failure shows)."""
    import socket

    doors = " ".join(section("ingest.md", "## Doors (Pacifica-compatible)").split())
    shown_state = json.loads(fenced("ingest.md", "## Doors (Pacifica-compatible)", "json"))
    (too_large,) = re.findall(r'`"exception": "(the upload is larger than [^"]+)"`', doors)
    limit, declared = (
        int(n) for n in re.findall(r"limit of (\d+) bytes .*; declared (\d+) bytes", too_large)[0]
    )
    (counted,) = re.findall(r"`(sent at least \d+ bytes)` for a body without", doors)
    (stopped,) = re.findall(r'`"exception": "(the upload stopped after [^"]+)"`', doors)
    srv: Server = server_factory(env={"DATAFERRY_INGEST__MAX_UPLOAD_BYTES": str(limit)})

    # Over the limit, declared (Content-Length) and counted (chunked): 413, the document.
    def chunks() -> Any:
        yield b"x" * (declared // 2)
        yield b"x" * (declared - declared // 2)

    for body, message in [
        (b"x" * declared, too_large),
        (chunks(), too_large.replace(f"declared {declared} bytes", counted)),
    ]:
        answer = httpx.post(f"{srv.url}/upload", content=body, timeout=60)
        assert answer.status_code == 413, answer.text
        doc = answer.json()
        same_shape(shown_state, doc, "413 from /upload")
        assert (doc["state"], doc["task"], doc["complete"]) == ("FAILED", "UPLOADING", True)
        assert doc["exception"] == message

    # A body that stops: no answer reaches the client; get_state shows the failure.
    sent = limit // 2
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            + f"Content-Length: {limit}\r\n\r\n".encode()
            + b"x" * sent
        )
        s.shutdown(socket.SHUT_WR)
        assert s.recv(65536) == b""  # the connection closes without an answer
    with api(srv) as c:
        job_id = c.get("/api/v1/jobs", params={"kind": "ingest", "limit": 1}).json()["jobs"][0][
            "job_id"
        ]
    state = srv.wait_job(job_id)
    assert state["state"] == "failed", state
    doc = httpx.get(f"{srv.url}/get_state", params={"job_id": job_id}, timeout=10).json()
    same_shape(shown_state, doc, "GET /get_state")
    assert (doc["state"], doc["task"]) == ("FAILED", "UPLOADING"), doc
    pattern = re.escape(stopped).replace("N", r"\d+").replace("M", str(limit))
    assert re.fullmatch(pattern, doc["exception"]), (stopped, doc["exception"])

    # A whole body that is not a tar: 200 at the door, the job fails at "open tar".
    answer = httpx.post(f"{srv.url}/upload", content=b"not a tar", timeout=60)
    assert answer.status_code == 200, answer.text
    same_shape(shown_state, answer.json(), "200 from /upload")
    job_id = answer.json()["job_id"]
    srv.wait_job(job_id)
    doc = httpx.get(f"{srv.url}/get_state", params={"job_id": job_id}, timeout=10).json()
    (task,) = re.findall(r'`"task": "([^"]+)"` for a body that is not a tar', doors)
    assert (doc["state"], doc["task"]) == ("FAILED", task), doc
    assert not (srv.home / "archive" / str(job_id)).exists()


# --- docs/replication.md --------------------------------------------------------------


def expand(synopsis: str, choice: int = 0, optional: bool = True) -> str:
    """A synopsis as a command: ``[--x V]`` kept (or dropped) without brackets, and
    ``a|b|c`` the ``choice``-th alternative."""
    text = re.sub(r"\[([^\]]+)\]", (lambda m: m.group(1)) if optional else "", synopsis)
    text = re.sub(r"(\w+(?:\|\w+)+)", lambda m: m.group(1).split("|")[choice], text)
    return " ".join(text.split())


@pytest.mark.database_agnostic
def test_replication_md_records_exchange_protocol_and_peers(
    server_factory: Any, tmp_path: Path, consumer_db: str
) -> None:
    from tests.support.replication import TOKENS, instance_env

    a: Server = server_factory("a", env=instance_env("a"))
    b: Server = server_factory("b", env=instance_env("b"), db=consumer_db)

    # `dataferry records create NAME --schema FILE`, then records through the REST summary.
    (create,) = re.findall(
        r"`(dataferry records create[^`]+)`",
        section("replication.md", "## Records").replace("\n", " "),
    )
    (tmp_path / "FILE").write_text(json.dumps({"type": "object"}))
    shell(" ".join(create.split()).replace("NAME", "obs"), a, tmp_path)
    rest = {row[0].strip("`"): row[1] for row in table("replication.md", "## REST summary")}
    with api(a) as c:
        made = c.post("/api/v1/collections/obs/records", json={"species": "emu", "n": 2})
        assert made.status_code == 201 and "201" in rest["POST /api/v1/collections/{name}/records"]
        record = made.json()
        assert {"uuid", "origin", "hlc", "changed", "deleted", "data", "seq"} <= set(record)
        uid = record["uuid"]
        assert (
            c.put(
                f"/api/v1/collections/obs/records/{uid}", json={"species": "emu", "n": 3}
            ).status_code
            == 200
        )
        other = c.post("/api/v1/collections/obs/records", json={"species": "kiwi"}).json()
        tomb = c.delete(f"/api/v1/collections/obs/records/{other['uuid']}").json()
        assert tomb["deleted"] is True  # "delete (answers the tombstone)"
        assert c.get(f"/api/v1/collections/obs/records/{other['uuid']}").status_code == 404
        kept = c.get(
            f"/api/v1/collections/obs/records/{other['uuid']}", params={"include_deleted": "true"}
        )
        assert kept.json()["data"] == {"species": "kiwi"}  # with its last values
        refused = c.post("/api/v1/collections/obs/records", json=[1])
        assert refused.status_code == 422
        schema = c.put(
            "/api/v1/collections/obs", json={"schema": {"type": "object", "required": ["species"]}}
        )
        assert schema.status_code == 200, schema.text
        assert c.post("/api/v1/collections/obs/records", json={"n": 1}).status_code == 422
        assert c.put("/api/v1/collections/obs", json={"schema": None}).status_code == 200
        feed = c.get("/api/v1/collections/obs/changes", params={"since": 0, "limit": 10}).json()
        assert {"cursor", "more"} <= set(feed) and len(feed["changes"]) == 2, feed
        for path in [
            "/api/v1/collections",
            "/api/v1/collections/obs/records",
            "/api/v1/collections/obs/conflicts",
            "/api/v1/collections/obs/export?format=json",
        ]:
            assert c.get(path).status_code == 200, path

        # The protocol: hello, pull (a batch shaped as the doc's), fetch, checkpoint, push.
        hello_row = table("replication.md", "## Protocol (version 2; version 1 still served)")
        calls = {row[0].strip("`").split("?")[0]: row for row in hello_row}
        hello = c.get("/api/v1/replication/hello").json()
        assert set(hello) == json_keys(calls["GET /hello"][2]), hello
        pull_body = {
            "protocol": 2,
            "collection": "obs",
            "requester": "docs-reader",
            "since": 0,
            "limit": 100,
            "max_bytes": 1 << 20,
        }
        assert set(pull_body) == json_keys(calls["POST /pull"][1])
        batch = c.post("/api/v1/replication/pull", json=pull_body).json()
        shown_batch = fenced(
            "replication.md", "## Protocol (version 2; version 1 still served)", "json"
        )
        assert set(batch) == json_keys(shown_batch), sorted(batch)
        change = next(ch for ch in batch["changes"] if ch["uuid"] == uid)
        assert set(change) == {"uuid", "origin", "data", "meta"} and "s" in change["meta"]
        fetched = c.post(
            "/api/v1/replication/fetch", json={"protocol": 2, "collection": "obs", "uuids": [uid]}
        ).json()
        assert set(fetched) == json_keys(calls["POST /fetch"][2])
        checkpoint = c.get(
            "/api/v1/replication/checkpoint", params={"collection": "obs", "source": "someone"}
        ).json()
        assert set(checkpoint) == json_keys(calls["GET /checkpoint"][2]), checkpoint
        assert c.get("/api/v1/replication/checkpoints").status_code == 200
        # b receives a's batch as a push, and answers in the documented shape.
        with api(b) as cb:
            pushed = cb.post("/api/v1/replication/push", json=batch)
            assert pushed.status_code == 200, pushed.text
            assert set(pushed.json()) == json_keys(calls["POST /push"][2]), pushed.json()
            stale = dict(batch, protocol=3)
            assert cb.post("/api/v1/replication/push", json=stale).status_code == 422
        wrong = httpx.get(
            f"{a.url}/api/v1/replication/hello", headers={"Authorization": "Bearer wrong"}
        )
        assert wrong.status_code == 401

    # Export and import, each format of the synopsis; the export re-imported changes nothing.
    export, import_ = indented("replication.md", "## Export and import")
    for choice, suffix in enumerate(["csv", "json", "xml"]):
        if choice == 0:  # --since/--until/-o as written: a window before these records
            shell(expand(export, choice), a, tmp_path)
        shell(expand(export, choice, optional=False) + f" -o all.{suffix}", a, tmp_path)
        said = shell(import_.replace("obs.csv", f"all.{suffix}"), a, tmp_path)
        for word in ("created", "updated", "unchanged", "rejected"):
            assert word in said, said
        assert re.search(r"unchanged\D*2", said), said
    windowed = (tmp_path / "obs.csv").read_text()
    assert uid not in windowed and uid in (tmp_path / "all.csv").read_text()

    # Peers and sync: b as the peer the doc calls https://b.example.org:8080.
    for line in indented("replication.md", "## Peers and sync"):
        command = expand(line).replace("https://b.example.org:8080", b.url)
        command = command.replace("SECRET", TOKENS["b"]).replace(" --discovered", "")
        if command.startswith("dataferry peer remove"):
            continue  # after the sync, below
        said = shell(command, a, tmp_path)
        if command.startswith("dataferry peer list"):
            (peer,) = json.loads(said)["peers"] if "{" in said[:2] else json.loads(said)
            assert peer["name"] == "b" and peer["url"] == b.url, peer
    with api(b) as cb:
        synced = cb.get(f"/api/v1/collections/obs/records/{uid}").json()
    assert synced["data"] == {"species": "emu", "n": 3}
    shell("dataferry peer remove b", a, tmp_path)
    # "A wrong token fails the job (`last_error` says 401)."
    assert "A wrong token fails the job (`last_error` says 401)" in " ".join(
        section("replication.md", "## Peers and sync").split()
    )
    with api(a) as c:
        c.post("/api/v1/peers", json={"name": "b2", "url": b.url, "token": "wrong"})
        job = c.post("/api/v1/peers/b2/sync").json()
        assert a.wait_job(job["job_id"])["state"] == "failed"
        assert "401" in c.get("/api/v1/peers/b2").json()["last_error"]


# --- docs/sinks.md --------------------------------------------------------------------


def wait_for(check: Any, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def shown_message(doc: str, heading: str, start: str) -> str:
    """The message in backticks, beginning ``start``, that a section shows."""
    text = " ".join(section(doc, heading).split())
    found = re.search(rf"`({re.escape(start)}[^`]*)`", text)
    assert found is not None, start
    return found.group(1)


@pytest.mark.database_agnostic
def test_sinks_md_definitions_delivery_and_operating_commands(
    server: Server, tmp_path: Path
) -> None:
    from tests.support.receiver import Receiver
    from tests.support.tables import AppTable

    receiver = Receiver().start()
    try:
        run_sinks_md(
            server, tmp_path, receiver, AppTable(f"sqlite:///{tmp_path}/portal.db", "vettings")
        )
    finally:
        receiver.stop()


def run_sinks_md(server: Server, tmp_path: Path, receiver: Any, vettings: Any) -> None:
    portal = f"sqlite:///{tmp_path}/portal.db"
    vettings.insert(42)
    with api(server) as c:
        assert (
            c.post("/api/v1/collections/observations/records", json={"species": "emu"}).status_code
            == 201
        )

    def here(text: str) -> str:
        return (
            as_here(text, server, tmp_path)
            .replace("sqlite:////srv/portal.db", portal)
            .replace("https://partner.example.org/ws/vettings", receiver.url)
            .replace("https://partner.example.org/in", receiver.url.replace("/vettings", "/in"))
        )

    add, curl = commands_of(fenced("sinks.md", "## Defining a sink", "sh"))
    shell(here(add), server, tmp_path, env={"PARTNER_KEY": "k-123"}, substitute=False)
    created = json.loads(shell(here(curl), server, tmp_path, substitute=False, stdout=True))
    assert created["name"] == "obs" and created["retry_interval"] == 10, created

    # Both deliver, in the default document's shape, with the documented key format.
    wait_for(lambda: {r.id for r in receiver.applied()} >= {"42"} and len(receiver.applied()) >= 2)
    payload = section("sinks.md", "## Payload mapping")
    default = json_keys(payload[payload.index("The default document is") :])
    for received in receiver.applied():
        assert set(received.document) == default, received.document
        assert received.document["status"] == "new"
    row = next(r for r in receiver.applied() if r.id == "42")
    assert re.fullmatch(r"table:vettings/42/.+", row.idempotency_key), row.idempotency_key
    assert vettings.row(42)["last_sync"] == vettings.row(42)["modified"]

    # The refusals the doc quotes, word for word.
    with api(server) as c:
        bad_port = shown_message("sinks.md", "## Defining a sink", "target URL 'http://h:99999/'")
        answer = c.post(
            "/api/v1/sinks",
            json={"name": "p", "source": {"collection": "observations"}, "url": "http://h:99999/"},
        )
        assert answer.status_code == 422 and bad_port in answer.json()["detail"], answer.text
        too_short = shown_message("sinks.md", "## Defining a sink", "retry_interval: Input")
        answer = c.patch("/api/v1/sinks/obs", json={"retry_interval": 1e-300})
        assert answer.status_code == 422 and too_short in answer.json()["detail"], answer.text
    no_column = shown_message("sinks.md", "## Defining a sink", "table 'vettings' has no modified")
    said = shell(
        f"dataferry sink add v2 --table vettings --table-url {portal} --modified changed_at"
        f" --last-sync other_sync",
        server,
        tmp_path,
        exit_code=1,
        substitute=False,
    )
    assert no_column in said, said
    shared = shown_message("sinks.md", "## Sources", "sink 'a' already reads table")
    said = shell(
        f"dataferry sink add v3 --table vettings --table-url {portal}",
        server,
        tmp_path,
        1,
        substitute=False,
    )
    first, _, last = (
        shared.replace("sink 'a'", "sink 'vettings'")
        .replace("sqlite:////srv/portal.db", portal)
        .partition("; ... ")
    )
    assert first in " ".join(said.split()) and last in said, said

    # A sink without a URL is idle, and `sink list` says why.
    (idle,) = re.findall(
        r"`(idle: no target URL configured)`", section("sinks.md", "## Defining a sink")
    )
    shell("dataferry sink add quiet --collection observations", server, tmp_path, substitute=False)
    listed = shell("dataferry sink list", server, tmp_path, substitute=False)
    assert idle in " ".join(listed.split()), listed
    shell("dataferry sink remove quiet", server, tmp_path, substitute=False)

    # The operating table, CLI and REST, on the collection sink.
    rows = table("sinks.md", "## Operating")
    for cli_cell, _rest, _what in rows:
        for command in re.findall(r"`([^`]+)`", cli_cell):
            if not command.startswith(("sink ", "resume ")):
                continue
            command = command.replace("resume NAME", "sink resume NAME")
            if command.startswith(("sink add", "sink remove")):
                continue  # add ran above; remove runs last
            line = command.replace("NAME", "obs").replace(" [KEY...]", "").replace(" ...", "")
            line = line.replace("--url U", f"--url {receiver.url}")
            shell(f"dataferry {line}", server, tmp_path, substitute=False)
    with api(server) as c:
        for _cli, rest_cell, _what in rows:
            for call in re.findall(r"`((?:GET|POST|PATCH|DELETE) [^`]+)`", rest_cell):
                method, path = call.split(" ", 1)
                if path.startswith("..."):
                    path = "/api/v1/sinks/NAME" + path[3:]
                path = path.replace("NAME", "obs")
                if method == "POST" and path == "/api/v1/sinks":
                    continue  # the curl example above
                body: dict[str, Any] | None = {"keys": []} if path.endswith("/retry") else None
                if method == "PATCH":
                    body = {"url": receiver.url}
                answer = c.request(method, path, json=body)
                status = 204 if method == "DELETE" else 200
                assert answer.status_code in (status, 201, 202), (call, answer.text)
        shown = c.get("/api/v1/sinks/vettings").json()
        for key in (
            "changes",
            "delivered_total",
            "failed_total",
            "last_poll",
            "last_delivered",
            "last_error",
        ):
            assert key in shown, key
        assert c.get("/api/v1/sinks/obs").status_code == 404  # removed by the table's DELETE
    metrics = httpx.get(f"{server.url}/metrics").text
    for name in re.findall(r"`(dataferry_sink_[a-z_]+)", section("sinks.md", "## Operating")):
        assert name in metrics, name


@pytest.mark.database_agnostic
def test_the_examples_left_out_are_in_the_docs() -> None:
    for doc, example, why in NOT_RUN:
        assert example in " ".join((DOCS / doc).read_text().split()), (doc, example, why)
