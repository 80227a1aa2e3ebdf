"""``dataferry records ...``: collections, records, the change feed, conflicts,
export and import (a client of the REST API)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from dataferry.cli.common import JSON_OPTION, client, console, fail, load_json, print_json
from dataferry.client import segment

app = typer.Typer(
    help="Collections of JSON records: put, get, delete, list, changes, conflicts, export, import.",
    no_args_is_help=True,
)

FORMATS = ("csv", "json", "xml")


def _base(collection: str) -> str:
    return f"/api/v1/collections/{segment(collection, 'a collection name')}"


def _read_json(data: str | None, file: Path | None) -> Any:
    if (data is None) == (file is None):
        fail("give the document either as an argument (JSON) or with --file")
    try:
        if file is not None:
            text = sys.stdin.read() if str(file) == "-" else file.read_text()
        else:
            text = data or ""
        return load_json(text)
    except (OSError, ValueError) as exc:
        fail(f"cannot read the JSON document: {exc}")


def _show(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(doc)
        return
    state = " (deleted)" if doc["deleted"] else ""
    console.print(
        f"{doc['collection']}/{doc['uuid']}{state} origin {doc['origin']} "
        f"changed {doc['changed']} seq {doc['seq']}",
        highlight=False,
    )
    console.print_json(json.dumps(doc["data"]))


@app.command("put")
def put(
    collection: str = typer.Argument(..., help="Collection name (created if new)."),
    data: str = typer.Argument(None, help='The record as JSON, e.g. \'{"site": "A"}\'.'),
    uuid: str = typer.Option(None, "--uuid", "-u", help="Record UUID (default: a new one)."),
    file: Path = typer.Option(None, "--file", "-f", help="Read the JSON from a file ('-': stdin)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create or replace a record (only changed fields get a new stamp)."""
    doc = _read_json(data, file)
    with client() as c:
        if uuid:
            out = c.request(
                "PUT", f"{_base(collection)}/records/{segment(uuid, 'a record UUID')}", json=doc
            )
        else:
            out = c.request("POST", f"{_base(collection)}/records", json=doc)
    if as_json:
        print_json(out)
    else:
        console.print(f"{out['uuid']} seq {out['seq']}", highlight=False)


@app.command("get")
def get(
    collection: str,
    uuid: str,
    include_deleted: bool = typer.Option(False, "--include-deleted", help="Show a tombstone."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one record."""
    with client() as c:
        out = c.request(
            "GET",
            f"{_base(collection)}/records/{segment(uuid, 'a record UUID')}",
            params={"include_deleted": include_deleted},
        )
    _show(out, as_json)


@app.command("delete")
def delete(collection: str, uuid: str, as_json: bool = JSON_OPTION) -> None:
    """Delete a record (a tombstone stays, for replication and audit)."""
    with client() as c:
        out = c.request("DELETE", f"{_base(collection)}/records/{segment(uuid, 'a record UUID')}")
    if as_json:
        print_json(out)
    else:
        console.print(f"{out['uuid']} deleted (seq {out['seq']})", highlight=False)


@app.command("list")
def list_(
    collection: str,
    include_deleted: bool = typer.Option(False, "--include-deleted", help="Show tombstones too."),
    limit: int = typer.Option(100, help="How many."),
    offset: int = typer.Option(0, help="Skip this many (ordered by UUID)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List a collection's records."""
    with client() as c:
        page = c.request(
            "GET",
            f"{_base(collection)}/records",
            params={"include_deleted": include_deleted, "limit": limit, "offset": offset},
        )
    if as_json:
        print_json(page["records"])
        return
    table = Table("uuid", "deleted", "changed", "data")
    for r in page["records"]:
        text = json.dumps(r["data"], sort_keys=True)
        table.add_row(
            r["uuid"],
            "yes" if r["deleted"] else "",
            r["changed"][:19],
            text[:60] + ("..." if len(text) > 60 else ""),
        )
    console.print(table)
    console.print(f"{len(page['records'])} of {page['total']} records", highlight=False)


@app.command("collections")
def collections(as_json: bool = JSON_OPTION) -> None:
    """List collections."""
    with client() as c:
        docs = c.request("GET", "/api/v1/collections")["collections"]
    if as_json:
        print_json(docs)
        return
    table = Table("name", "records", "deleted", "head", "schema")
    for d in docs:
        table.add_row(
            d["name"],
            str(d["records"]),
            str(d["deleted"]),
            str(d["head"]),
            "yes" if d["schema"] else "",
        )
    console.print(table)


@app.command("create")
def create(
    collection: str,
    schema: Path = typer.Option(None, "--schema", help="A JSON Schema file for its records."),
    no_schema: bool = typer.Option(False, "--no-schema", help="Drop the collection's schema."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a collection, or set or drop its JSON Schema."""
    body: dict[str, Any] = {}
    if schema is not None:
        body["schema"] = _read_json(None, schema)
    elif no_schema:
        body["schema"] = None
    with client() as c:
        out = c.request("PUT", _base(collection), json=body)
    if as_json:
        print_json(out)
    else:
        console.print(
            f"collection {out['name']}" + (" (with schema)" if out["schema"] else ""),
            highlight=False,
        )


@app.command("changes")
def changes(
    collection: str,
    since: int = typer.Option(0, help="Cursor: changes after this sequence number."),
    limit: int = typer.Option(100, help="How many."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Read the change feed (tombstones included); prints the next cursor."""
    with client() as c:
        page = c.request(
            "GET", f"{_base(collection)}/changes", params={"since": since, "limit": limit}
        )
    if as_json:
        print_json(page)
        return
    for r in page["changes"]:
        mark = "deleted" if r["deleted"] else "changed"
        console.print(f"{r['seq']} {r['uuid']} {mark} {r['changed']}", highlight=False)
    console.print(f"cursor {page['cursor']}" + (" (more)" if page["more"] else ""), highlight=False)


@app.command("conflicts")
def conflicts(
    collection: str,
    uuid: str = typer.Option(None, "--uuid", help="Only this record."),
    limit: int = typer.Option(100, help="How many (newest first)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show the conflict log: values that lost to concurrent changes."""
    params: dict[str, Any] = {"limit": limit}
    if uuid:
        params["uuid"] = uuid
    with client() as c:
        docs = c.request("GET", f"{_base(collection)}/conflicts", params=params)["conflicts"]
    if as_json:
        print_json(docs)
        return
    table = Table("at", "uuid", "kind", "field", "lost", "won", "from")
    for d in docs:
        table.add_row(
            d["at"][:19],
            d["uuid"],
            d["kind"],
            d["field"],
            json.dumps(d["lost"]),
            json.dumps(d["won"]),
            d["source"],
        )
    console.print(table)


@app.command("export")
def export(
    collection: str,
    format: str = typer.Option("json", "--format", help="csv, json or xml."),
    since: str = typer.Option(None, help="Only records changed at or after this date/time."),
    until: str = typer.Option(None, help="Only records changed before this date/time."),
    output: Path = typer.Option(None, "--output", "-o", help="Write here (default: stdout)."),
) -> None:
    """Export a collection (tombstones included) as csv, json or xml."""
    if format not in FORMATS:
        fail(f"format must be one of {', '.join(FORMATS)}")
    if output is not None and not output.name:  # "", "/" or ".": no file to write
        fail(f"--output {str(output)!r} is not a file name")
    params: dict[str, Any] = {"format": format}
    if since:
        params["since"] = since
    if until:
        params["until"] = until
    with client() as c:
        body = c.raw("GET", f"{_base(collection)}/export", params=params)
    if output is None:
        sys.stdout.buffer.write(body)
    else:
        tmp = output.with_name(f".{output.name}.part")
        try:
            tmp.write_bytes(body)
            tmp.replace(output)
        except OSError as exc:  # a folder, a missing folder, no permission...
            tmp.unlink(missing_ok=True)
            fail(f"cannot write {output}: {exc.strerror or exc}")


@app.command("import")
def import_(
    collection: str,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A csv, json or xml file."),
    format: str = typer.Option(None, "--format", help="csv, json or xml (default: from the name)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Upsert records by UUID from a file; reports created, updated, unchanged, rejected."""
    fmt = format or file.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        fail(f"cannot tell the format of {file.name}; use --format csv|json|xml")
    try:
        content = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
    with client() as c:
        report = c.request(
            "POST",
            f"{_base(collection)}/import",
            params={"format": fmt},
            content=content,
            headers={"Content-Type": "application/octet-stream"},
        )
    if as_json:
        print_json(report)
        return
    console.print(
        f"created {report['created']}, updated {report['updated']}, "
        f"unchanged {report['unchanged']}, rejected {report['rejected']}",
        highlight=False,
    )
    for r in report["rejections"]:
        console.print(f"  row {r['row']}: {r['reason']}", highlight=False)
    if report["rejected"]:
        raise typer.Exit(1)
