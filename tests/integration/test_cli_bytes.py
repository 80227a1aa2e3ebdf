"""Command-line arguments that are not UTF-8 (any bytes can be an argument on
POSIX: ``dataferry endpoint add $'\\xff' ...``), run as real subprocesses against a
real server: every text argument of every command family is refused with a clear
error and exit status 2 before anything happens, never a traceback. File names
are not text: a file whose name is not UTF-8 is read and written as any other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import Server

X = b"\xff"
TOKEN = "t" * 32


def run(server: Server, *args: bytes | str, env: dict[str, str] | None = None) -> Any:
    argv = [a if isinstance(a, bytes) else a.encode() for a in args]
    return subprocess.run(
        [sys.executable.encode(), b"-m", b"dataferry", *argv],
        env={**server.env, **(env or {})},
        capture_output=True,
        timeout=120,
    )


def refused(result: Any, what: str) -> None:
    err = result.stderr.decode()
    assert result.returncode == 2, (result.returncode, err)
    assert "Traceback" not in err, err
    assert f"{what} " in err and "is not valid UTF-8 text" in err, err
    assert "\\xff" in err, err  # the bad byte is shown as what it was


# (argv, the parameter the error names), one or more per command family
CASES: list[tuple[list[bytes | str], str]] = [
    (["endpoint", "add", X, "/tmp/x"], "name"),
    (["endpoint", "add", "e1", b"/tmp/" + X], "url"),
    (["endpoint", "add", "e1", "/tmp/x", "-o", b"k=" + X], "option"),
    (["endpoint", "add", "e1", "/tmp/x", "-s", b"k=" + X], "secret"),
    (["endpoint", "show", X], "name"),
    (["endpoint", "remove", X], "name"),
    (["transfer", b"lab:/" + X, "lab:/y"], "source"),
    (["transfer", "lab:/a", "lab:/b", "--mode", X], "mode"),
    (["jobs", "--state", X], "state"),
    (["ingest", "DATA", "--meta", b"k=" + X], "meta"),
    (["bundle", "create", "DATA", "-o", "OUT", "--meta", b"Transactions.project=" + X], "meta"),
    (["records", "put", X, '{"a": 1}'], "collection"),
    (["records", "put", "obs", b'{"a": "' + X + b'"}'], "data"),
    (["records", "put", "obs", '{"a": 1}', "--uuid", X], "uuid"),
    (["records", "get", "obs", X], "uuid"),
    (["records", "list", X], "collection"),
    (["records", "export", "obs", "--since", X], "since"),
    (["peer", "add", X, "http://127.0.0.1:9", "--token", "t"], "name"),
    (["peer", "add", "p2", "http://127.0.0.1:9", "--token", X], "token"),
    (["peer", "remove", X], "name"),
    (["sync", X], "peer"),
    (["site", "add", X, "http://127.0.0.1:9", "--token", TOKEN], "name"),
    (["site", "remove", X], "name"),
    (["dataset", "publish", "a.b", "--from", "lab:/", "--meta", b"k=" + X], "meta"),
    (["dataset", "show", X], "uid"),
    (["sink", "add", "s2", "--collection", "obs", "-H", b"k=" + X], "header"),
    (["sink", "show", X], "name"),
    (["sink", "retry", "s1", X], "keys"),
    (["--url", b"http://" + X, "jobs"], "url"),
    (["--token", X, "jobs"], "token"),
    (["serve", "--host", X, "--port", "1"], "host"),
]


def state(server: Server) -> dict[str, Any]:
    """Everything the commands above could have changed."""
    with server.client() as c:
        return {
            "endpoints": c.request("GET", "/api/v1/endpoints"),
            "collections": c.request("GET", "/api/v1/collections"),
            "records": c.request("GET", "/api/v1/collections/obs/records"),
            "peers": c.request("GET", "/api/v1/peers"),
            "sites": c.request("GET", "/api/v1/sites"),
            "sinks": c.request("GET", "/api/v1/sinks"),
            "datasets": c.request("GET", "/api/v1/datasets"),
            "jobs": c.request("GET", "/api/v1/jobs"),
        }


def test_arguments_that_are_not_utf8_are_refused(server: Server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "f.txt").write_text("hi")
    server.cli("endpoint", "add", "lab", str(data))
    server.cli("records", "put", "obs", '{"a": 1}')
    server.cli("sink", "add", "s1", "--collection", "obs", "--paused")
    before = state(server)
    out = tmp_path / "out.tar"
    for argv, what in CASES:
        args = [str(data) if a == "DATA" else str(out) if a == "OUT" else a for a in argv]
        refused(run(server, *args), what)
    assert state(server) == before
    assert not out.exists() and not list(tmp_path.glob(".out.tar*"))


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DATAFERRY_TOKEN", "a\udcff", "the token 'a\\xff' (--token or DATAFERRY_TOKEN) must be"),
        ("DATAFERRY_TOKEN", "caf\u00e9", "must be printable ASCII"),
        ("DATAFERRY_URL", "http://h/\udcff", "the service URL 'http://h/\\xff'"),
        ("DATAFERRY_URL", "ftp://h", "must be http(s)://HOST[:PORT]"),
    ],
)
def test_a_bad_url_or_token_from_the_environment_is_a_clear_error(
    server: Server, variable: str, value: str, message: str
) -> None:
    """The same values through the environment, which Python decodes as argv."""
    env = {variable: value.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")}
    result = run(server, "endpoint", "list", env=env)
    err = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in err, err
    assert message in " ".join(err.split()), err


def test_file_names_that_are_not_utf8_are_file_names(server: Server, tmp_path: Path) -> None:
    server.cli("records", "put", "obs", '{"a": 1}')
    name = bytes(tmp_path) + b"/obs-" + X + b".json"
    result = run(server, "records", "export", "obs", "--format", "json", "-o", name)
    assert result.returncode == 0, result.stderr.decode()
    exported = Path(name.decode("utf-8", "surrogateescape"))
    assert exported.stat().st_size > 0
    result = run(server, "records", "import", "copy", name)
    assert result.returncode == 0, result.stderr.decode()
    assert b"created 1" in result.stdout


def test_a_folder_holding_a_file_name_that_is_not_utf8_is_not_bundled(
    server: Server, tmp_path: Path
) -> None:
    """metadata.txt names every file in JSON: a name that is not text cannot be
    named. It was bundled anyway (and uploaded, as a job); now nothing is sent."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "ok.txt").write_text("x")
    with open(bytes(folder) + b"/n" + X + b".txt", "wb") as f:
        f.write(b"x")
    out = tmp_path / "out.tar"
    for args in (("ingest", str(folder)), ("bundle", "create", str(folder), "-o", str(out))):
        result = run(server, *args)
        err = " ".join(result.stderr.decode().split())
        assert result.returncode == 1 and "Traceback" not in err, err
        assert "the file name 'n\\xff.txt' in" in err and "is not UTF-8 text" in err, err
    assert not out.exists() and not list(tmp_path.glob(".out.tar*"))
    with server.client() as c:
        assert c.request("GET", "/api/v1/jobs")["jobs"] == []
