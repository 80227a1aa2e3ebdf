"""Bad local input to the CLI: files it cannot write or read as text, and options
it cannot use. Each was a traceback (an export over a folder also left its
``.part`` file behind); now each is a clear error, with nothing changed. Real
subprocesses, against a real server where the command talks to one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.server import Server


def refused(server: Server, *args: str, message: str, code: int = 1) -> None:
    result = server.cli(*args, check=False)
    err = " ".join(result.stderr.split())
    assert result.returncode == code, (args, result.returncode, err)
    assert "Traceback" not in err and message in err, (args, err)


def test_export_and_import_files_that_cannot_be_written_or_read(
    server: Server, tmp_path: Path
) -> None:
    server.cli("records", "put", "obs", '{"a": 1}')
    folder = tmp_path / "folder"
    folder.mkdir()
    refused(server, "records", "export", "obs", "-o", str(folder), message="cannot write")
    refused(
        server,
        "records",
        "export",
        "obs",
        "-o",
        str(tmp_path / "no" / "x.json"),
        message="cannot write",
    )
    refused(server, "records", "export", "obs", "-o", "", message="is not a file name")
    assert not list(tmp_path.rglob("*.part")) and not list(folder.iterdir())
    key = tmp_path / "key.bin"
    key.write_bytes(b"\xee\xff\x00 not text")
    refused(
        server,
        "endpoint",
        "add",
        "e1",
        str(tmp_path),
        "--secret-file",
        f"k={key}",
        message="is not UTF-8 text",
        code=2,
    )
    with server.client() as c:
        assert c.request("GET", "/api/v1/endpoints")["endpoints"] == []


@pytest.mark.database_agnostic
@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (("serve", "--log-level", "bogus"), "--log-level 'bogus' is not one of", 2),
        (("worker", "--log-level", "bogus"), "--log-level 'bogus' is not one of", 2),
        (("beat", "--log-level", "bogus"), "--log-level 'bogus' is not one of", 2),
        (("serve", "--port", "99999"), "configuration error", 1),
        (("serve", "--port", "-5"), "configuration error", 1),
    ],
)
def test_server_options_that_cannot_be_used(
    tmp_path: Path, args: tuple[str, ...], message: str, code: int
) -> None:
    """A log level logging does not know and a port out of range were tracebacks."""
    server = Server(tmp_path / "home", f"sqlite:///{tmp_path / 'x.db'}")
    refused(server, *args, message=message, code=code)
    assert not (tmp_path / "x.db").exists()
