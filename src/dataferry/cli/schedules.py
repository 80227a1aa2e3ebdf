"""``dataferry schedule add|list|show|pause|resume|run|remove``."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from dataferry.cli.args import USAGE_ERROR
from dataferry.cli.common import JSON_OPTION, client, console, fail, print_json
from dataferry.cli.jobs import (
    CHECKSUM_OPTION,
    COMPARE_OPTION,
    EMPTY_FOLDERS_OPTION,
    EXCLUDE_OPTION,
    INCLUDE_OPTION,
    MAX_AGE_OPTION,
    MAX_SIZE_OPTION,
    MIN_AGE_OPTION,
    MIN_SIZE_OPTION,
    MODE_OPTION,
    OVERWRITE_OPTION,
    transfer_limits,
)
from dataferry.client import transfer_body
from dataferry.durations import parse_duration
from dataferry.errors import InvalidRequest

app = typer.Typer(
    help="Transfers submitted again every so often (e.g. a nightly sync).", no_args_is_help=True
)


def _transfer(doc: dict[str, Any]) -> str:
    t = doc["transfer"]
    return f"{t['source']} -> {t['destination']} ({t['mode']})"


def _show(doc: dict[str, Any]) -> None:
    console.print(f"schedule {doc['name']}", highlight=False, markup=False)
    lines = {
        "transfer": _transfer(doc),
        "every": f"{doc['every']:g} s",
        "start": doc["start"],
        "next run": "paused" if doc["paused"] else doc["next_run"],
        "runs": f"{doc['runs']} (skipped {doc['skipped']})",
        "last run": doc["last_run"] or "-",
        "last job": doc["last_job_id"] if doc["last_job_id"] is not None else "-",
    }
    if doc["last_error"]:
        lines["last error"] = doc["last_error"]
    for key, value in lines.items():
        console.print(f"  {key}: {value}", highlight=False, markup=False)


def _print(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(doc)
    else:
        _show(doc)


@app.command("add")
def add(
    name: str = typer.Argument(..., help="A short name, e.g. 'nightly-run1'."),
    source: str = typer.Argument(..., help="ENDPOINT:PATH to copy from."),
    destination: str = typer.Argument(..., help="ENDPOINT:PATH to copy to."),
    every: str = typer.Option(
        ..., "--every", help="How often: 15m, 12h, 1d, 1w (plain digits: seconds); 1m at least."
    ),
    start: str = typer.Option(
        None,
        "--start",
        help="First run, ISO 8601 with a time zone (e.g. 2026-12-09T02:00:00Z); runs then "
        "fall on start + k * every. Default: now.",
    ),
    mode: str = MODE_OPTION,
    checksum: str = CHECKSUM_OPTION,
    overwrite: str = OVERWRITE_OPTION,
    include: list[str] = INCLUDE_OPTION,
    exclude: list[str] = EXCLUDE_OPTION,
    compare: str = COMPARE_OPTION,
    empty_folders: bool = EMPTY_FOLDERS_OPTION,
    min_size: str = MIN_SIZE_OPTION,
    max_size: str = MAX_SIZE_OPTION,
    min_age: str = MIN_AGE_OPTION,
    max_age: str = MAX_AGE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Submit a transfer every so often (e.g. --every 1d --mode sync).

    The transfer is checked now as `dataferry transfer` checks it, and again at each
    run. A run that falls while the previous run's job is still going is skipped;
    runs missed while the service was down make one run."""
    try:
        seconds = parse_duration("--every", every)
    except InvalidRequest as exc:
        fail(exc.message, USAGE_ERROR)
    limits = transfer_limits(min_size, max_size, min_age, max_age)
    body = transfer_body(
        source,
        destination,
        mode,
        checksum,
        overwrite,
        None,
        include,
        exclude,
        compare,
        empty_folders,
        **limits,
    )
    with client() as c:
        doc = c.add_schedule(name, body, seconds, start)
    if as_json:
        print_json(doc)
    else:
        console.print(f"schedule {doc['name']}: first run at {doc['next_run']}", highlight=False)


@app.command("list")
def list_(as_json: bool = JSON_OPTION) -> None:
    """List schedules with their next run and last job."""
    with client() as c:
        docs = c.schedules()
    if as_json:
        print_json(docs)
        return
    table = Table("name", "transfer", "every s", "next run", "runs", "skipped", "last job")
    for d in docs:
        table.add_row(
            d["name"],
            _transfer(d),
            f"{d['every']:g}",
            "paused" if d["paused"] else str(d["next_run"])[:19],
            str(d["runs"]),
            str(d["skipped"]),
            "-" if d["last_job_id"] is None else str(d["last_job_id"]),
        )
    console.print(table)


@app.command("show")
def show(name: str, as_json: bool = JSON_OPTION) -> None:
    """Show one schedule, with why its last run was skipped, if it was."""
    with client() as c:
        doc = c.schedule(name)
    _print(doc, as_json)


@app.command("pause")
def pause(name: str, as_json: bool = JSON_OPTION) -> None:
    """Stop making runs (a job already made runs on)."""
    with client() as c:
        doc = c.schedule(name, "pause")
    _print(doc, as_json)


@app.command("resume")
def resume(name: str, as_json: bool = JSON_OPTION) -> None:
    """Make runs again, from the next one after now (none made up)."""
    with client() as c:
        doc = c.schedule(name, "resume")
    _print(doc, as_json)


@app.command("run")
def run(name: str, as_json: bool = JSON_OPTION) -> None:
    """Submit the schedule's transfer now; prints the job id."""
    with client() as c:
        doc = c.schedule(name, "run")
    if as_json:
        print_json(doc)
    else:
        console.print(f"job {doc['job_id']} queued", highlight=False)


@app.command("remove")
def remove(name: str) -> None:
    """Remove a schedule (the jobs it made stay)."""
    with client() as c:
        c.remove_schedule(name)
    console.print(f"schedule {name} removed", highlight=False)
