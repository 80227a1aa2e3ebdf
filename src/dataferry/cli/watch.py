"""Follow a job until it ends: a Rich progress bar on a terminal, quiet otherwise."""

from __future__ import annotations

from typing import Any

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from dataferry.cli.common import console
from dataferry.client import FINAL_STATES, Client

# Paths a check's summary names of the files only the destination has.
EXTRA_SHOWN = 20

# How often the progress bar is redrawn (each redraw is one long-poll request).
POLL_SECONDS = 0.5


def follow(c: Client, job_id: int, show_bar: bool) -> dict[str, Any]:
    """Follow the job until it reaches a final state; return its last document. The
    server answers each request as soon as the job ends (a long poll), so this returns
    without a polling delay."""
    if not show_bar or not console.is_terminal:
        return c.wait(job_id)
    doc = c.job(job_id)
    columns = (
        # the description is the job's task, which may name a file: not markup
        TextColumn("job {task.fields[job]} {task.description}", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(doc["task"], total=None, job=job_id)
        while True:
            total = doc["bytes_total"]
            bar.update(
                task,
                description=f"{doc['state']}: {doc['task']}",
                completed=doc["bytes_done"],
                total=total if total else None,
            )
            if doc["state"] in FINAL_STATES:
                break
            doc = c.job(job_id, wait=POLL_SECONDS)
    return doc


def describe(doc: dict[str, Any]) -> str:
    files = f"{doc['files_done']}/{doc['files_total'] if doc['files_total'] is not None else '?'}"
    line = (
        f"job {doc['job_id']} [{doc['kind']}] {doc['state']}: {doc['task']} "
        f"{doc['task_percent']:.1f}% files {files} bytes {doc['bytes_done']}"
        f"/{doc['bytes_total'] if doc['bytes_total'] is not None else '?'} "
        f"attempts {doc['attempts']}"
    )
    if doc["error"]:
        line += f"\n  error: {doc['error']}"
    return line


def outcome(c: Client, doc: dict[str, Any]) -> str:
    """What a finished transfer did, as rclone users expect to read it: how many files
    it copied, how many it skipped because the destination already had them, and how
    many a mirror removed; for a check, what it found. Empty for other jobs (the
    document says all there is)."""
    if doc["kind"] != "transfer" or doc["state"] not in ("succeeded", "failed"):
        return ""
    result = c.job_detail(doc["job_id"]).get("result") or {}
    if "same" in result:  # mode check, which fails when the sides differ
        shown = result["extra_paths"][:EXTRA_SHOWN]
        extra = "".join(f"\n  only at the destination: {p}" for p in shown)
        if result["extra"] > len(shown):
            extra += f"\n  ... and {result['extra'] - len(shown)} more (the job's result)"
        return (
            f"  same {result['same']}, differ {result['differ']}, missing "
            f"{result['missing']}, only at the destination {result['extra']}{extra}"
        )
    if "copied" not in result or doc["state"] != "succeeded":
        return ""
    words = [f"copied {result['copied']}", f"skipped {result.get('skipped', 0)} (unchanged)"]
    if "folders" in result:
        words.append(f"empty folders {result['folders']}")
    if "deleted" in result:
        words.append(f"deleted {result['deleted']}")
    if result.get("bytes_resumed"):
        words.append(f"resumed {result['bytes_resumed']} bytes")
    if result.get("unknown_mtime"):
        words.append(f"left out {result['unknown_mtime']} (time unknown)")
    return "  " + ", ".join(words)
