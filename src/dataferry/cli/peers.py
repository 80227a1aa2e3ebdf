"""``dataferry peer add|list|remove`` and ``dataferry sync PEER``."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from dataferry.cli.common import JSON_OPTION, client, console, print_json
from dataferry.cli.watch import describe, follow
from dataferry.client import segment

app = typer.Typer(help="Other dataferry instances to replicate records with.", no_args_is_help=True)


@app.command("add")
def add(
    name: str = typer.Argument(..., help="A short name for the peer."),
    url: str = typer.Argument(..., help="Its URL, e.g. http://10.0.0.7:8080."),
    token: str = typer.Option(
        "", "--token", help="A bearer token the peer accepts (stored encrypted)."
    ),
    collection: list[str] = typer.Option(
        None, "--collection", help="Sync only this collection (repeatable; default: all)."
    ),
    interval: int = typer.Option(
        None, "--interval", help="Seconds between scheduled syncs (0: on demand only)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register a peer. Nothing is synced until you run `dataferry sync` or its schedule runs."""
    body: dict[str, Any] = {
        "name": name,
        "url": url,
        "token": token,
        "collections": collection or [],
    }
    if interval is not None:
        body["interval_seconds"] = interval
    with client() as c:
        doc = c.request("POST", "/api/v1/peers", json=body)
    if as_json:
        print_json(doc)
    else:
        console.print(f"peer {doc['name']} -> {doc['url']}", highlight=False)


@app.command("list")
def list_(
    discovered: bool = typer.Option(
        False, "--discovered", help="Show instances found over mDNS/DNS-SD (not trusted)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List peers (or discovered instances) with their sync status."""
    with client() as c:
        doc = c.request("GET", "/api/v1/peers", params={"discovered": discovered})
    if discovered:
        if as_json:
            print_json(doc["discovered"])
            return
        if not doc["enabled"]:
            console.print("discovery is off (set records.discovery = true)", highlight=False)
        table = Table("instance id", "name", "url", "owner", "seen")
        for d in doc["discovered"]:
            table.add_row(d["instance_id"], d["name"], d["url"], d.get("owner", ""), d["seen"][:19])
        console.print(table)
        return
    if as_json:
        print_json(doc["peers"])
        return
    table = Table(
        "name", "url", "instance id", "owner", "contact", "last sync", "syncs", "last error"
    )
    for p in doc["peers"]:
        table.add_row(
            p["name"],
            p["url"],
            p["instance_id"],
            p["owner"],
            p["contact"],
            (p["last_sync"] or "never")[:19],
            str(p["sync_count"]),
            p["last_error"],
        )
    console.print(table)


@app.command("remove")
def remove(name: str) -> None:
    """Forget a peer (its records stay; checkpoints stay, so re-adding resumes)."""
    with client() as c:
        c.request("DELETE", f"/api/v1/peers/{segment(name)}")
    console.print(f"peer {name} removed", highlight=False)


def sync(
    peer: str = typer.Argument(..., help="The peer's name (see `dataferry peer list`)."),
    collection: list[str] = typer.Option(
        None, "--collection", help="Only this collection (repeatable; default: all)."
    ),
    wait: bool = typer.Option(False, "--wait", help="Follow the job until it ends."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Sync records with a peer now (a `replicate` job): pull its changes, then push ours."""
    with client() as c:
        doc = c.request(
            "POST",
            f"/api/v1/peers/{segment(peer)}/sync",
            json={"collections": collection or []},
        )
        if wait:
            doc = follow(c, doc["job_id"], show_bar=not as_json)
    if as_json:
        print_json(doc)
    else:
        console.print(describe(doc) if wait else f"job {doc['job_id']} queued", highlight=False)
    if wait and doc["state"] != "succeeded":
        raise typer.Exit(1)
