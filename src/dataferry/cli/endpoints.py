"""``dataferry endpoint add|list|show|remove|ls``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from dataferry.cli.common import JSON_OPTION, client, console, parse_pairs, print_json

app = typer.Typer(
    help="Register and inspect endpoints (named storage locations).", no_args_is_help=True
)


@app.command("add")
def add(
    name: str = typer.Argument(..., help="A short name, e.g. 'lab'."),
    url: str = typer.Argument(
        ..., help="Where it is: file:///data/lab (or /data/lab), sftp://, s3://, https://."
    ),
    option: list[str] = typer.Option(
        None, "--option", "-o", help="k=v protocol option, repeatable."
    ),
    secret: list[str] = typer.Option(None, "--secret", "-s", help="k=v secret, stored encrypted."),
    secret_file: list[str] = typer.Option(
        None,
        "--secret-file",
        help="k=PATH: a secret read from a file (e.g. private_key=~/.ssh/id_ed25519); "
        "only its encrypted copy is stored.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register an endpoint.

    Examples: sftp://user@host:22/data -s password=... (or --secret-file
    private_key=KEYFILE, -o known_hosts=FILE); s3://bucket/prefix -o endpoint_url=...
    -o region=... -s access_key_id=... -s secret_access_key=...; https://host/files."""
    secrets = parse_pairs(secret, "secret")
    for key, path in parse_pairs(secret_file, "secret-file").items():
        try:
            secrets[key] = Path(str(path)).expanduser().read_text()
        except OSError as exc:
            raise typer.BadParameter(f"--secret-file {key}: {exc.strerror}: {path}") from None
        except UnicodeDecodeError:  # a secret is text (a password, a PEM key)
            raise typer.BadParameter(f"--secret-file {key}: {path} is not UTF-8 text") from None
    with client() as c:
        doc = c.add_endpoint(name, url, parse_pairs(option, "option"), secrets)
    if as_json:
        print_json(doc)
    else:
        console.print(f"endpoint {doc['name']} -> {doc['url']}", highlight=False)


@app.command("list")
def list_(as_json: bool = JSON_OPTION) -> None:
    """List endpoints."""
    with client() as c:
        docs = c.endpoints()
    if as_json:
        print_json(docs)
        return
    table = Table("name", "url", "options", "secrets")
    for d in docs:
        opts = ", ".join(f"{k}={v}" for k, v in d["options"].items())
        table.add_row(d["name"], d["url"], opts, ", ".join(d["secrets"]))
    console.print(table)


@app.command("show")
def show(name: str, as_json: bool = JSON_OPTION) -> None:
    """Show one endpoint (secret names only, never values)."""
    with client() as c:
        doc = c.endpoint(name)
    if as_json:
        print_json(doc)
        return
    for key in ("name", "url", "protocol", "created"):
        console.print(f"{key}: {doc[key]}", highlight=False)
    for k, v in doc["options"].items():
        console.print(f"option {k}: {v}", highlight=False)
    for k in doc["secrets"]:
        console.print(f"secret {k}: (set)", highlight=False)


@app.command("remove")
def remove(name: str) -> None:
    """Remove an endpoint."""
    with client() as c:
        c.remove_endpoint(name)
    console.print(f"endpoint {name} removed", highlight=False)


def _printable(name: str) -> str:
    """A file name on one line: a newline or other control character in it escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


def _when(mtime_ns: int | None) -> str:
    if mtime_ns is None:
        return "-"
    return datetime.fromtimestamp(mtime_ns // 10**9, UTC).strftime("%Y-%m-%d %H:%M:%S")


@app.command("ls")
def ls(
    location: str = typer.Argument(
        ..., help="ENDPOINT:PATH to look at (ENDPOINT or ENDPOINT: alone: its root)."
    ),
    recursive: bool = typer.Option(False, "--recursive", "-R", help="Everything below."),
    limit: int = typer.Option(1000, help="Entries to show at most (1 to 100000)."),
    offset: int = typer.Option(0, help="Entries to skip first (the next page)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List what is at a path of an endpoint: size, time (UTC) and path of each entry.

    Folders end with '/'. A file shows itself. Paths are relative to the endpoint's
    root, as transfers name them."""
    endpoint, _, path = location.partition(":")
    if not endpoint:
        raise typer.BadParameter(f"{location!r}: give ENDPOINT:PATH (e.g. lab:raw/run1)")
    with client() as c:
        doc = c.list_files(endpoint, path, recursive, limit, offset)
    if as_json:
        print_json(doc)
        return
    for entry in doc["entries"]:
        folder = entry["type"] == "directory"
        size = "-" if folder else str(entry["size"])
        name = entry["path"] + ("/" if folder else "")
        console.print(
            f"{size:>14} {_when(entry.get('mtime')):<19}  {_printable(name)}",
            highlight=False,
            markup=False,
        )
    if doc["truncated"] or doc["offset"]:
        shown_to = doc["offset"] + len(doc["entries"])
        console.print(
            f"entries {doc['offset'] + 1}-{shown_to} of {doc['total']}"
            + (f" (next: --offset {shown_to})" if doc["truncated"] else ""),
            highlight=False,
        )
    elif doc["type"] == "directory" and not doc["entries"]:
        console.print("(empty folder)", highlight=False)
