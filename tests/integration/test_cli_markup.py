"""What the CLI prints is never read as Rich markup: a URL, a record's data or a
server's message holding "[/x]" was a MarkupError traceback, some of them after
the change was made (``endpoint add``, ``peer add``, ``sink add``), and a table
holding one could not be listed any more. Real subprocesses, a real server."""

from __future__ import annotations

from pathlib import Path

from tests.support.server import Server


def ok(server: Server, *args: str) -> str:
    result = server.cli(*args, check=False, env_columns=1000)
    assert result.returncode == 0 and "Traceback" not in result.stderr, (args, result.stderr)
    return "".join(result.stdout.split())  # Rich wraps long lines: compare without spaces


def test_brackets_are_printed_as_they_are(server: Server, tmp_path: Path) -> None:
    folder = tmp_path / "[red]x"
    (folder / "[" / "x]").mkdir(parents=True)  # .../[red]x/[/x]
    out = ok(server, "endpoint", "add", "e1", str(folder / "[/x]"))
    assert "[red]x/[/x]" in out
    assert "[/x]" in ok(server, "endpoint", "show", "e1")
    assert "[/x]" in ok(server, "endpoint", "list")
    assert "/[/x]" in ok(server, "peer", "add", "p1", "http://127.0.0.1:9/[/x]", "--token", "t")
    assert "[/x]" in ok(server, "peer", "list")
    uuid = server.cli_json("records", "put", "obs", '{"a": "[/x] [bold]b"}')["uuid"]
    assert "[/x][bold]b" in ok(server, "records", "list", "obs")
    assert "[/x][bold]b" in ok(server, "records", "get", "obs", uuid)
    ok(server, "sink", "add", "s1", "--collection", "obs", "--paused", "--url", "http://h/[/x]")
    assert "http://h/[/x]" in ok(server, "sink", "show", "s1")
    ok(server, "sink", "list")
    # an error message quoting what was given
    result = server.cli("endpoint", "add", "[/x]", str(tmp_path), check=False)
    err = " ".join(result.stderr.split())
    assert result.returncode == 1 and "Traceback" not in err, err
    assert "error: " in err and "'[/x]'" in err, err
