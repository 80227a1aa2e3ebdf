"""``dataferry endpoint add|list|show|remove``."""

from __future__ import annotations

import typer
from rich.table import Table

from dataferry.cli.common import JSON_OPTION, client, console, parse_pairs, print_json

app = typer.Typer(
    help="Register and inspect endpoints (named storage locations).", no_args_is_help=True
)


@app.command("add")
def add(
    name: str = typer.Argument(..., help="A short name, e.g. 'lab'."),
    url: str = typer.Argument(..., help="Where it is: file:///data/lab (or /data/lab)."),
    option: list[str] = typer.Option(
        None, "--option", "-o", help="k=v protocol option, repeatable."
    ),
    secret: list[str] = typer.Option(None, "--secret", "-s", help="k=v secret, stored encrypted."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register an endpoint."""
    with client() as c:
        doc = c.add_endpoint(
            name, url, parse_pairs(option, "option"), parse_pairs(secret, "secret")
        )
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
