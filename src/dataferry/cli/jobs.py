"""``dataferry transfer``, ``jobs``, ``status``, ``retry``, ``cancel``."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from dataferry.cli.args import USAGE_ERROR
from dataferry.cli.common import JSON_OPTION, client, console, fail, print_json
from dataferry.cli.watch import describe, follow, outcome
from dataferry.durations import parse_duration
from dataferry.errors import InvalidRequest
from dataferry.transfers.limits import parse_size

_SIZE_HELP = "K, M, G, T, P are 1024-based (as rclone's): 10M = 10485760; plain digits: bytes."
_AGE_HELP = (
    "A duration: 30s, 15m, 12h, 7d or 2w (plain digits: seconds), measured back from "
    "when the job plans."
)


# The transfer's options, shared by `transfer` and `schedule add`.
MODE_OPTION = typer.Option(
    "copy",
    help="copy, move (delete each source file once verified), "
    "sync (copy only what differs), mirror (sync, then delete from the "
    "destination folder what the source does not have) or check (compare both "
    "sides, write nothing; the job fails when they differ).",
)
CHECKSUM_OPTION = typer.Option("sha256", help="sha256, sha1, md5 or none.")
OVERWRITE_OPTION = typer.Option(
    None,
    help="always, never or if-different (default: if-different for sync and mirror, "
    "always otherwise).",
)
EXPECTED_CHECKSUM_OPTION = typer.Option(
    None,
    "--expected-checksum",
    help="ALGO:HEX the single source file must have (e.g. sha256:...); "
    "a mismatch fails the job and leaves nothing in place.",
)
INCLUDE_OPTION = typer.Option(
    None,
    "--include",
    help="Only files matching this gitignore-style pattern (e.g. '*.csv', 'raw/**'); "
    "repeat for more. Folder sources only.",
)
EXCLUDE_OPTION = typer.Option(
    None,
    "--exclude",
    help="Leave out files matching this gitignore-style pattern (e.g. '*.tmp', "
    "'cache/'; '!keep.tmp' makes an exception); repeat for more. Folder sources only.",
)
COMPARE_OPTION = typer.Option(
    None,
    help="How sync, mirror and --overwrite if-different tell a file is already there: "
    "checksum (default: same size, then the same checksum, reading both) or "
    "size-mtime (same size and modification time to the second, reading neither).",
)
EMPTY_FOLDERS_OPTION = typer.Option(
    False,
    "--empty-folders",
    help="Create the source's empty folders at the destination too (as rclone's "
    "--create-empty-src-dirs; S3 has no folders). With --include, only folders a "
    "pattern names as folders ('raw/').",
)
MIN_SIZE_OPTION = typer.Option(
    None, "--min-size", help=f"Only files of at least this size (e.g. 10M). {_SIZE_HELP}"
)
MAX_SIZE_OPTION = typer.Option(
    None, "--max-size", help=f"Only files of at most this size (e.g. 1G). {_SIZE_HELP}"
)
MIN_AGE_OPTION = typer.Option(
    None, "--min-age", help=f"Only files modified longer ago than this. {_AGE_HELP}"
)
MAX_AGE_OPTION = typer.Option(
    None,
    "--max-age",
    help=f"Only files modified within this (7d: the last 7 days). {_AGE_HELP} "
    "A file whose time the source does not tell is left out.",
)


def transfer_limits(
    min_size: str | None, max_size: str | None, min_age: str | None, max_age: str | None
) -> dict[str, Any]:
    """The size and age options as the API takes them (bytes, seconds); a usage
    error naming the option for a value that is not a size or a duration."""
    try:
        return {
            "min_size": None if min_size is None else parse_size("--min-size", min_size),
            "max_size": None if max_size is None else parse_size("--max-size", max_size),
            "min_age": None if min_age is None else parse_duration("--min-age", min_age),
            "max_age": None if max_age is None else parse_duration("--max-age", max_age),
        }
    except InvalidRequest as exc:
        fail(exc.message, USAGE_ERROR)


def _exit_for(doc: dict[str, object]) -> None:
    if doc["state"] != "succeeded":
        raise typer.Exit(1)


def transfer(
    source: str = typer.Argument(..., help="ENDPOINT:PATH to copy from."),
    destination: str = typer.Argument(..., help="ENDPOINT:PATH to copy to."),
    mode: str = MODE_OPTION,
    checksum: str = CHECKSUM_OPTION,
    overwrite: str = OVERWRITE_OPTION,
    expected_checksum: str = EXPECTED_CHECKSUM_OPTION,
    include: list[str] = INCLUDE_OPTION,
    exclude: list[str] = EXCLUDE_OPTION,
    compare: str = COMPARE_OPTION,
    empty_folders: bool = EMPTY_FOLDERS_OPTION,
    min_size: str = MIN_SIZE_OPTION,
    max_size: str = MAX_SIZE_OPTION,
    min_age: str = MIN_AGE_OPTION,
    max_age: str = MAX_AGE_OPTION,
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Submit nothing: list the files the transfer would take and, for mirror, "
        "the files it would delete.",
    ),
    wait: bool = typer.Option(False, "--wait", help="Follow the job until it ends."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Submit a transfer; prints its job id (and follows it with --wait)."""
    limits = transfer_limits(min_size, max_size, min_age, max_age)
    with client() as c:
        doc = c.transfer(
            source,
            destination,
            mode,
            checksum,
            overwrite,
            expected_checksum,
            include,
            exclude,
            dry_run=dry_run,
            compare=compare,
            empty_folders=empty_folders,
            **limits,
        )
        if dry_run:
            if as_json:
                print_json(doc)
            else:
                _print_preview(doc)
            return
        if wait:
            doc = follow(c, doc["job_id"], show_bar=not as_json)
        done = outcome(c, doc) if wait and not as_json else ""
    if as_json:
        print_json(doc)
    else:
        console.print(describe(doc) if wait else f"job {doc['job_id']} queued", highlight=False)
        if done:
            console.print(done, highlight=False)
    if wait:
        _exit_for(doc)


def _print_preview(doc: dict[str, Any]) -> None:
    """What a dry run found, in the words the transfer would act on."""
    dest = doc["destination"]
    verb = "check" if doc["mode"] == "check" else "copy"
    for f in doc["files"]:
        console.print(f"{verb:<8}{f['path'] or dest}", highlight=False, markup=False)
    for path in doc["folders"]:
        console.print(f"mkdir   {path}/", highlight=False, markup=False)
    for path in doc["delete"]:
        console.print(f"delete  {path}", highlight=False, markup=False)
    summary = f"{doc['files_total']} files ({doc['bytes_total']} bytes) to {dest}"
    if doc["folders_total"]:
        summary += f"; {doc['folders_total']} empty folders to create"
    if doc["mode"] == "mirror":
        summary += f"; {doc['delete_total']} files to delete there"
    if doc.get("unknown_mtime"):
        summary += f"; {doc['unknown_mtime']} files left out: their time is unknown"
    if doc.get("reference_time"):
        summary += f"; ages measured from {doc['reference_time']}"
    if doc["mode"] in ("sync", "mirror"):
        summary += "; identical files are skipped when the job compares them"
    if doc["truncated"]:
        shown = max(len(doc["files"]), len(doc["folders"]), len(doc["delete"]))
        summary += f" (the lists above stop at {shown} paths)"
    console.print(f"dry run: {summary}; nothing was submitted", highlight=False, markup=False)


def jobs(
    state: str = typer.Option(None, help="Only jobs in this state."),
    kind: str = typer.Option(None, help="Only jobs of this kind."),
    limit: int = typer.Option(50, help="How many (newest first)."),
    offset: int = typer.Option(0, help="Skip this many."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List jobs, newest first."""
    with client() as c:
        page = c.jobs(state=state, kind=kind, limit=limit, offset=offset)
    if as_json:
        print_json(page["jobs"])
        return
    table = Table("id", "kind", "state", "task", "%", "files", "bytes", "attempts", "updated")
    for d in page["jobs"]:
        table.add_row(
            str(d["job_id"]),
            d["kind"],
            d["state"],
            d["task"],
            f"{d['task_percent']:.0f}",
            f"{d['files_done']}/{d['files_total'] if d['files_total'] is not None else '?'}",
            str(d["bytes_done"]),
            str(d["attempts"]),
            d["updated"][:19],
        )
    console.print(table)
    console.print(f"{len(page['jobs'])} of {page['total']} jobs", highlight=False)


def status(
    job_id: int = typer.Argument(..., help="The job id."),
    watch: bool = typer.Option(False, "--watch", help="Keep showing until the job ends."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a job's state and progress."""
    with client() as c:
        if watch and as_json:
            doc = c.wait(job_id)
        elif watch:
            doc = follow(c, job_id, show_bar=True)
        else:
            doc = c.job(job_id)
        done = "" if as_json else outcome(c, doc)
    if as_json:
        print_json(doc)
    else:
        console.print(describe(doc), highlight=False)
        if done:
            console.print(done, highlight=False)


def retry(job_id: int, as_json: bool = JSON_OPTION) -> None:
    """Restart a failed or cancelled job (verified files are not copied again)."""
    with client() as c:
        doc = c.retry(job_id)
    print_json(doc) if as_json else console.print(describe(doc), highlight=False)


def prune_jobs(
    older_than_days: float = typer.Option(
        ...,
        "--older-than-days",
        help="Delete finished jobs that ended more than this many days ago (0: all).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete old finished jobs with their per-file rows.

    Transfer, move, ala and records-sync jobs go; ingest and dataset jobs are kept
    (other records name them). jobs.keep_finished_days does the same on its own."""
    with client() as c:
        deleted = c.prune_jobs(older_than_days)
    if as_json:
        print_json({"deleted": deleted})
    else:
        console.print(f"deleted {deleted} finished jobs", highlight=False)


def cancel(job_id: int, as_json: bool = JSON_OPTION) -> None:
    """Cancel a queued, running or retrying job."""
    with client() as c:
        doc = c.cancel(job_id)
    print_json(doc) if as_json else console.print(describe(doc), highlight=False)
