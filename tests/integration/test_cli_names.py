"""Names the CLI puts in a URL path are one path segment each, whatever they hold:
``dataferry endpoint remove ../sinks/s1`` once removed the sink s1 (the HTTP
client resolves ``..``), and an empty name addressed the whole collection. Real
subprocesses against a real server; a refused command changes nothing and never
ends in a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.server import Server


def state(server: Server) -> dict[str, Any]:
    with server.client() as c:
        return {
            "endpoints": c.request("GET", "/api/v1/endpoints"),
            "records": c.request("GET", "/api/v1/collections/obs/records"),
            # (a scheduled sync attempt may touch a peer's status: its name and URL stay)
            "peers": [(p["name"], p["url"]) for p in c.request("GET", "/api/v1/peers")["peers"]],
            "sites": c.request("GET", "/api/v1/sites"),
            "sinks": c.request("GET", "/api/v1/sinks"),
        }


def refused(server: Server, *args: str, message: str) -> None:
    result = server.cli(*args, check=False)
    err = " ".join(result.stderr.split())
    assert result.returncode == 1, (args, result.returncode, result.stdout, err)
    assert "Traceback" not in err and message in err, (args, err)


def test_names_are_one_path_segment(server: Server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    server.cli("endpoint", "add", "lab", str(data))
    server.cli("site", "add", "site1", "http://127.0.0.1:9", "--token", "t" * 32)
    server.cli("peer", "add", "p1", "http://127.0.0.1:9", "--token", "t")
    record = server.cli_json("records", "put", "obs", '{"a": 1}')
    server.cli("sink", "add", "s1", "--collection", "obs", "--paused")
    before = state(server)
    not_found = "(HTTP 404)"
    cases: list[tuple[str, ...]] = [
        ("endpoint", "remove", "../sinks/s1"),
        ("sink", "remove", "../endpoints/lab"),
        ("site", "remove", "../peers/p1"),
        ("peer", "remove", "../sites/site1"),
        ("endpoint", "show", ".."),
        ("endpoint", "show", "lab/x"),
        ("endpoint", "show", "lab?x=1"),
        ("endpoint", "show", "lab#x"),
        ("sink", "show", "."),
        ("dataset", "show", ".."),
        ("sync", ".."),
    ]
    for args in cases:
        refused(server, *args, message=not_found)
    # "records get obs .." was the collection's document, shown as a record: a KeyError
    refused(server, "records", "get", "obs", "..", message="is not a UUID")
    refused(server, "records", "get", "..", record["uuid"], message="collection name '..' must")
    refused(server, "records", "delete", "obs", "..", message="is not a UUID")  # was a 405
    empty: list[tuple[tuple[str, ...], str]] = [
        (("endpoint", "remove", ""), "a name must not be empty"),  # said "removed"
        (("endpoint", "show", ""), "a name must not be empty"),  # a TypeError
        (("sink", "show", ""), "a name must not be empty"),
        (("dataset", "show", ""), "a name must not be empty"),
        (("site", "remove", ""), "a name must not be empty"),
        (("peer", "remove", ""), "a name must not be empty"),
        (("records", "get", "obs", ""), "a record UUID must not be empty"),
        (("records", "list", ""), "a collection name must not be empty"),
        # longer than a URL may be: httpx's InvalidURL was a traceback
        (("records", "get", "obs", "n" * 100_000), "cannot send this request"),
    ]
    for args, what in empty:
        refused(server, *args, message=what)
    assert state(server) == before
