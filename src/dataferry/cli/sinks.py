"""``dataferry sink add|list|show|set|remove|pause|resume|poll|failures|retry``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from dataferry.cli.common import (
    JSON_OPTION,
    client,
    console,
    fail,
    load_json,
    parse_pairs,
    print_json,
)

app = typer.Typer(
    help="Push new, modified and deleted records to a partner's web service.",
    no_args_is_help=True,
)


def _mapping(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data = load_json(path.read_text())
    except (OSError, ValueError) as exc:
        fail(f"mapping file {path}: {exc}")
    if not isinstance(data, dict):
        fail(f"mapping file {path}: expected a JSON object")
    return data


def _api_key(api_key: str | None, api_key_env: str | None) -> str | None:
    if api_key_env:
        value = os.environ.get(api_key_env)
        if value is None:
            fail(f"environment variable {api_key_env} is not set")
        return value
    return api_key


@app.command("add")
def add(
    name: str = typer.Argument(..., help="A short name, e.g. 'ala-vettings'."),
    collection: str = typer.Option(None, "--collection", help="Source: a dataferry collection."),
    table: str = typer.Option(None, "--table", help="Source: a table (or schema.table)."),
    table_url: str = typer.Option(
        None, "--table-url", help="SQLAlchemy URL of the table's database."
    ),
    key: str = typer.Option("id", "--key", help="Table: primary key column."),
    modified: str = typer.Option("modified", "--modified", help="Table: last-change column."),
    deleted: str = typer.Option("deleted", "--deleted", help="Table: deleted-time column."),
    last_sync: str = typer.Option("last_sync", "--last-sync", help="Table: last-sync column."),
    where: str = typer.Option("", "--where", help="Table: SQL row filter."),
    url: str = typer.Option("", "--url", help="Partner URL (empty: the sink stays idle)."),
    header: list[str] = typer.Option(None, "--header", "-H", help="k=v request header."),
    api_key: str = typer.Option(None, "--api-key", help="Partner API key (stored encrypted)."),
    api_key_env: str = typer.Option(
        None, "--api-key-env", help="Read the API key from this environment variable."
    ),
    mapping: Path = typer.Option(
        None, "--mapping", exists=True, dir_okay=False, help="JSON file: payload mapping."
    ),
    poll_interval: float = typer.Option(300.0, help="Seconds between polls of the source."),
    retry_interval: float = typer.Option(5.0, help="Seconds before the first retry."),
    retry_cap: float = typer.Option(600.0, help="Longest wait between retries."),
    give_up_after: int = typer.Option(
        None, help="Failed attempts before a change becomes a dead letter (default: never)."
    ),
    concurrency: int = typer.Option(8, help="Records delivered at once."),
    timeout: float = typer.Option(30.0, help="Seconds per request."),
    accept: str = typer.Option("200", help="Answers that count as delivered: 200 or 2xx."),
    paused: bool = typer.Option(False, "--paused", help="Create it paused."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Define a sink over a collection or a table."""
    if (collection is None) == (table is None):
        fail("give exactly one source: --collection NAME or --table NAME --table-url URL")
    source: dict[str, Any]
    if collection is not None:
        source = {"collection": collection}
    else:
        if not table_url:
            fail("--table needs --table-url (the database holding the table)")
        source = {
            "table": {
                "url": table_url,
                "name": table,
                "key": key,
                "modified": modified,
                "deleted": deleted,
                "last_sync": last_sync,
                "where": where,
            }
        }
    definition: dict[str, Any] = {
        "name": name,
        "source": source,
        "url": url,
        "headers": parse_pairs(header, "header"),
        "api_key": _api_key(api_key, api_key_env) or "",
        "mapping": _mapping(mapping),
        "poll_interval": poll_interval,
        "retry_interval": retry_interval,
        "retry_cap": retry_cap,
        "give_up_after": give_up_after,
        "concurrency": concurrency,
        "timeout": timeout,
        "accept": accept,
        "paused": paused,
    }
    with client() as c:
        doc = c.add_sink(definition)
    if as_json:
        print_json(doc)
    else:
        target = doc["url"] or "(no target URL: idle)"
        console.print(f"sink {doc['name']} -> {target}", highlight=False)


@app.command("set")
def set_(
    name: str,
    collection: str = typer.Option(None, "--collection", help="Source: a dataferry collection."),
    table: str = typer.Option(None, "--table", help="Source: a table (or schema.table)."),
    table_url: str = typer.Option(
        None, "--table-url", help="SQLAlchemy URL of the table's database."
    ),
    key: str = typer.Option(None, "--key", help="Table: primary key column."),
    modified: str = typer.Option(None, "--modified", help="Table: last-change column."),
    deleted: str = typer.Option(None, "--deleted", help="Table: deleted-time column."),
    last_sync: str = typer.Option(None, "--last-sync", help="Table: last-sync column."),
    where: str = typer.Option(None, "--where", help="Table: SQL row filter ('' for none)."),
    url: str = typer.Option(None, "--url", help="Partner URL ('' makes the sink idle)."),
    header: list[str] = typer.Option(None, "--header", "-H", help="k=v header (replaces all)."),
    api_key: str = typer.Option(None, "--api-key", help="New API key."),
    api_key_env: str = typer.Option(None, "--api-key-env", help="Read the key from a variable."),
    mapping: Path = typer.Option(None, "--mapping", exists=True, dir_okay=False),
    poll_interval: float = typer.Option(None),
    retry_interval: float = typer.Option(None),
    retry_cap: float = typer.Option(None),
    give_up_after: int = typer.Option(None),
    concurrency: int = typer.Option(None),
    timeout: float = typer.Option(None),
    accept: str = typer.Option(None),
    as_json: bool = JSON_OPTION,
) -> None:
    """Change a sink's settings (e.g. its URL once the partner's service exists).

    Table options not given keep their current values (see docs/sinks.md: moving a
    sink to another table, column or collection sends that source from its beginning)."""
    table_fields = {
        k: v
        for k, v in {
            "name": table,
            "url": table_url,
            "key": key,
            "modified": modified,
            "deleted": deleted,
            "last_sync": last_sync,
            "where": where,
        }.items()
        if v is not None
    }
    if collection is not None and table_fields:
        fail("give exactly one source: --collection NAME or the --table options")
    changes: dict[str, Any] = {
        k: v
        for k, v in {
            "url": url,
            "api_key": _api_key(api_key, api_key_env),
            "mapping": _mapping(mapping),
            "poll_interval": poll_interval,
            "retry_interval": retry_interval,
            "retry_cap": retry_cap,
            "give_up_after": give_up_after,
            "concurrency": concurrency,
            "timeout": timeout,
            "accept": accept,
        }.items()
        if v is not None
    }
    if header:
        changes["headers"] = parse_pairs(header, "header")
    if collection is not None:
        changes["source"] = {"collection": collection}
    elif table_fields:
        changes["source"] = {"table": table_fields}  # merged into the current one
    if not changes:
        fail("nothing to change: give at least one option")
    with client() as c:
        doc = c.update_sink(name, changes)
    if as_json:
        print_json(doc)
    else:
        console.print(f"sink {doc['name']} updated ({doc['state']})", highlight=False)


@app.command("list")
def list_(as_json: bool = JSON_OPTION) -> None:
    """List sinks, their state and delivery counts."""
    with client() as c:
        docs = c.sinks()
    if as_json:
        print_json(docs)
        return
    table = Table("name", "source", "state", "pending", "delivered", "dead")
    for d in docs:
        src = d["source"]
        source = (
            f"collection {src['collection']}"
            if src.get("collection")
            else f"table {src['table']['name']}"
        )
        state = d["state"] if not d["idle_reason"] else f"{d['state']}: {d['idle_reason']}"
        if d["last_error"] and not d["idle_reason"]:
            state += f" (last error: {d['last_error'][:80]})"
        ch = d["changes"]
        table.add_row(
            d["name"], source, state, str(ch["pending"]), str(d["delivered_total"]), str(ch["dead"])
        )
    console.print(table)


@app.command("show")
def show(name: str, as_json: bool = JSON_OPTION) -> None:
    """Show one sink: definition, progress and the last error."""
    with client() as c:
        doc = c.sink(name)
    if as_json:
        print_json(doc)
        return
    for key in (
        "name",
        "state",
        "idle_reason",
        "url",
        "source",
        "api_key",
        "headers",
        "poll_interval",
        "retry_interval",
        "retry_cap",
        "give_up_after",
        "concurrency",
        "timeout",
        "accept",
        "last_poll",
        "last_delivered",
        "delivered_total",
        "failed_total",
        "last_error",
    ):
        value = doc.get(key)
        if isinstance(value, dict):
            value = json.dumps(value)
        console.print(f"{key}: {'' if value is None else value}", highlight=False)
    ch = doc["changes"]
    console.print(
        f"changes: {ch['pending']} pending ({ch['retrying']} retrying, {ch['in_flight']} in "
        f"flight), {ch['delivered']} delivered, {ch['dead']} dead, {ch.get('dropped', 0)} dropped",
        highlight=False,
    )
    # Deletions this sink is done with whose table rows stay for the other sinks.
    waiting = ch.get("waiting_for_other_sinks", 0)
    console.print(f"deletions waiting for other sinks: {waiting}", highlight=False)


@app.command("remove")
def remove(name: str) -> None:
    """Remove a sink and its outbox (the source is left as it is)."""
    with client() as c:
        c.remove_sink(name)
    console.print(f"sink {name} removed", highlight=False)


@app.command("pause")
def pause(name: str) -> None:
    """Stop delivering (changes keep being collected when resumed)."""
    with client() as c:
        c.pause_sink(name)
    console.print(f"sink {name} paused", highlight=False)


@app.command("resume")
def resume(name: str) -> None:
    """Deliver again."""
    with client() as c:
        c.resume_sink(name)
    console.print(f"sink {name} resumed", highlight=False)


@app.command("poll")
def poll(name: str) -> None:
    """Look at the source now instead of waiting for the poll interval."""
    with client() as c:
        c.poll_sink(name)
    console.print(f"sink {name}: polling", highlight=False)


@app.command("failures")
def failures(
    name: str,
    limit: int = typer.Option(1000, help="At most this many."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List dead letters: changes given up on after the configured attempts."""
    with client() as c:
        docs = c.sink_failures(name, limit)
    if as_json:
        print_json(docs)
        return
    if not docs:
        console.print(f"sink {name}: no dead letters", highlight=False)
        return
    table = Table("key", "status", "last modified", "attempts", "error")
    for d in docs:
        table.add_row(d["key"], d["status"], d["last_modified"], str(d["attempts"]), d["error"])
    console.print(table)


@app.command("retry")
def retry(
    name: str,
    keys: list[str] = typer.Argument(None, help="Record keys (default: every dead letter)."),
) -> None:
    """Re-queue dead letters for delivery with fresh attempts."""
    with client() as c:
        n = c.retry_sink(name, keys or None)
    console.print(f"sink {name}: {n} change(s) re-queued", highlight=False)
