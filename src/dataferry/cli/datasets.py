"""``dataferry dataset ...``: publish and broadcast (provider), follow, inspect and
restart synced datasets (consumer)."""

from __future__ import annotations

import typer
from rich.table import Table

from dataferry.cli.common import JSON_OPTION, client, console, parse_pairs, print_json

app = typer.Typer(
    help="Datasets: publish and announce them (provider); follow and restart the ones "
    "delivered to us (consumer).",
    no_args_is_help=True,
)


@app.command("publish")
def publish(
    uid: str = typer.Argument(..., help="<site-prefix>.<id>, unique across institutions."),
    source: str = typer.Option(..., "--from", help="ENDPOINT:PATH of the dataset's folder."),
    meta: list[str] = typer.Option(None, "--meta", help="k=v metadata, repeatable."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Record a dataset (again, after a change); a job computes its manifest."""
    with client() as c:
        doc = c.publish(uid, source, parse_pairs(meta, "meta"))
    if as_json:
        print_json(doc)
    else:
        console.print(
            f"dataset {doc['uid']} version {doc['version']}: manifest job {doc['job_id']}",
            highlight=False,
        )


@app.command("broadcast")
def broadcast(
    uid: str,
    site: str = typer.Option(None, "--site", help="Only this site (default: every consumer)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Announce a dataset to every registered consumer (or one)."""
    with client() as c:
        doc = c.broadcast(uid, site)
    if as_json:
        print_json(doc)
    else:
        for r in doc["results"]:
            outcome = "notified" if r["ok"] else f"FAILED: {r['error']}"
            console.print(f"{r['site']}: {outcome}", highlight=False)
    if not all(r["ok"] for r in doc["results"]):
        raise typer.Exit(1)


@app.command("list")
def list_(
    synced: bool = typer.Option(
        False, "--synced", help="Datasets delivered to us, not the ones we publish."
    ),
    state: str = typer.Option(None, "--state", help="Only synced datasets in this state."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List published datasets (or, with --synced, the ones we receive)."""
    with client() as c:
        docs = c.synced_datasets(state) if synced or state else c.datasets()
    if as_json:
        print_json(docs)
        return
    if synced or state:
        table = Table("uid", "site", "state", "files", "message")
        for d in docs:
            table.add_row(d["uid"], d["site"], d["state"], str(d["files"]), d["message"])
    else:
        table = Table("uid", "state", "version", "files", "bytes", "source")
        for d in docs:
            table.add_row(
                d["uid"],
                d["state"],
                str(d["version"]),
                str(d["files"]),
                str(d["bytes"]),
                d["source"],
            )
    console.print(table)


@app.command("show")
def show(uid: str, as_json: bool = JSON_OPTION) -> None:
    """A published dataset with its manifest."""
    with client() as c:
        doc = c.dataset(uid)
    if as_json:
        print_json(doc)
        return
    for key in ("uid", "state", "version", "source", "files", "bytes", "error"):
        console.print(f"{key}: {doc[key]}", highlight=False)
    for k, v in doc["meta"].items():
        console.print(f"meta {k}: {v}", highlight=False)


@app.command("status")
def status(uid: str, as_json: bool = JSON_OPTION) -> None:
    """Where a dataset delivered to us stands."""
    with client() as c:
        doc = c.synced_dataset(uid)
    if as_json:
        print_json(doc)
        return
    for key in ("uid", "site", "state", "version", "files", "destination", "retries", "message"):
        console.print(f"{key}: {doc[key]}", highlight=False)


@app.command("history")
def history(uid: str, as_json: bool = JSON_OPTION) -> None:
    """Every state change of a dataset delivered to us, with its time and reason."""
    with client() as c:
        events = c.dataset_history(uid)
    if as_json:
        print_json(events)
        return
    table = Table("at", "from", "to", "reason")
    for e in events:
        table.add_row(e["at"], e["from"], e["to"], e["reason"])
    console.print(table)


@app.command("forget")
def forget(uid: str) -> None:
    """Remove a complete or permanently failed dataset delivered here.

    Its record and history go, its files stay. Announced again, it starts afresh."""
    with client() as c:
        c.forget_dataset(uid)
    console.print(f"dataset {uid}: forgotten", highlight=False, markup=False)


@app.command("restart")
def restart(uid: str, as_json: bool = JSON_OPTION) -> None:
    """Start a failed dataset again (the manifest is fetched again)."""
    with client() as c:
        doc = c.restart_dataset(uid)
    if as_json:
        print_json(doc)
    else:
        console.print(f"dataset {uid}: {doc['state']}", highlight=False)
