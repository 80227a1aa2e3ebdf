"""``dataferry site add|list|show|remove``."""

from __future__ import annotations

import typer
from rich.table import Table

from dataferry.cli.common import JSON_OPTION, client, console, print_json

app = typer.Typer(
    help="Sites: institutions we deliver datasets to (consumers) or receive them from (providers).",
    no_args_is_help=True,
)


@app.command("add")
def add(
    name: str = typer.Argument(..., help="The site's name (its own datasets.site_name)."),
    url: str = typer.Argument(..., help="Its dataferry URL, e.g. https://data.example.org."),
    token: str = typer.Option(..., "--token", help="The token this pair of sites shares."),
    role: str = typer.Option("consumer", "--role", help="provider or consumer."),
    inbound: str = typer.Option(
        "",
        "--inbound",
        help="ENDPOINT:PATH where its datasets are placed (on the consumer's instance).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register a site."""
    with client() as c:
        doc = c.add_site(name, url, token, role, inbound)
    if as_json:
        print_json(doc)
    else:
        console.print(f"site {doc['name']} ({doc['role']}) -> {doc['url']}", highlight=False)


@app.command("list")
def list_(as_json: bool = JSON_OPTION) -> None:
    """List sites (never their tokens)."""
    with client() as c:
        docs = c.sites()
    if as_json:
        print_json(docs)
        return
    table = Table("name", "role", "url", "inbound")
    for d in docs:
        table.add_row(d["name"], d["role"], d["url"], d["inbound"])
    console.print(table)


@app.command("remove")
def remove(name: str) -> None:
    """Remove a site: its requests are refused from then on."""
    with client() as c:
        c.remove_site(name)
    console.print(f"site {name} removed", highlight=False)
