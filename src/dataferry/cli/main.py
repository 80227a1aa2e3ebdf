"""Entry point of the ``dataferry`` command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

import dataferry
from dataferry.cli import (
    datasets,
    endpoints,
    ingest,
    jobs,
    peers,
    records,
    schedules,
    serve,
    sinks,
    sites,
    worker,
)
from dataferry.cli.args import require_utf8
from dataferry.cli.common import fail, print_error
from dataferry.client import ClientError
from dataferry.config import CONFIG_ENV
from dataferry.errors import ConfigurationError

app = typer.Typer(
    name="dataferry",
    help="Move and synchronise research data between institutions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dataferry {dataferry.__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    config: Path = typer.Option(
        None,
        "--config",
        "-c",
        help=f"TOML config file (or {CONFIG_ENV}).",
        exists=True,
        dir_okay=False,
    ),
    url: str = typer.Option(
        None,
        "--url",
        help="Service URL for client commands (or DATAFERRY_URL; default http://127.0.0.1:8080).",
    ),
    token: str = typer.Option(None, "--token", help="Bearer token (or DATAFERRY_TOKEN)."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    # The environment carries these to load_settings() (and to child processes).
    if config is not None:
        os.environ[CONFIG_ENV] = str(config.resolve())
    if url is not None:
        if not url.strip():  # it fell back to the default URL without a word
            fail("--url is empty: give the service URL, e.g. http://127.0.0.1:8080", 2)
        os.environ["DATAFERRY_URL"] = url
    if token is not None:
        os.environ["DATAFERRY_TOKEN"] = token


app.command("serve")(serve.serve)
app.command("init-db")(serve.init_db)
app.command("worker")(worker.worker)
app.command("beat")(worker.beat)
app.add_typer(endpoints.app, name="endpoint")
app.command("transfer")(jobs.transfer)
app.command("jobs")(jobs.jobs)
app.command("status")(jobs.status)
app.command("retry")(jobs.retry)
app.command("cancel")(jobs.cancel)
app.command("prune-jobs")(jobs.prune_jobs)
app.add_typer(schedules.app, name="schedule")
app.command("ingest")(ingest.ingest)
app.add_typer(ingest.bundle_app, name="bundle")
app.add_typer(ingest.transactions_app, name="transactions")
app.add_typer(records.app, name="records")
app.add_typer(peers.app, name="peer")
app.command("sync")(peers.sync)
app.add_typer(sites.app, name="site")
app.add_typer(datasets.app, name="dataset")
app.add_typer(sinks.app, name="sink")


require_utf8(app)


def main() -> None:
    try:
        app()
    except (ClientError, ConfigurationError) as exc:  # the latter: serve, init-db, worker
        print_error(exc.message)
        sys.exit(1)
