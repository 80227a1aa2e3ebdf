"""``dataferry bundle create``, ``dataferry ingest`` and ``dataferry transactions``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from dataferry.cli.common import (
    JSON_OPTION,
    client,
    console,
    err_console,
    fail,
    parse_pairs,
    print_json,
    shown,
)
from dataferry.cli.watch import describe, follow
from dataferry.errors import InvalidRequest
from dataferry.text import lone_surrogate

if TYPE_CHECKING:
    from dataferry.ingest.bundler import Source

bundle_app = typer.Typer(help="Make ingest bundles (tar of data/ and metadata.txt).")
transactions_app = typer.Typer(help="Ingested transactions and their files.")

META_OPTION = typer.Option(
    None,
    "--meta",
    "-m",
    help="Metadata KEY=VALUE, repeatable: Transactions.project=..., Transactions.instrument=..., "
    "Transactions.submitter=..., or any other key (recorded as a key-value).",
)
HASH_OPTION = typer.Option(
    "sha1", "--hash", help="File hash recorded in metadata.txt: sha1, sha256 or md5."
)
CHUNK = 1024 * 1024


def _bar(show: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=not show,
    )


@bundle_app.command("create")
def bundle_create(
    folder: Path = typer.Argument(..., help="Folder whose files go under data/."),
    output: Path = typer.Option(..., "--output", "-o", help="The bundle file to write."),
    meta: list[str] = META_OPTION,
    hash_name: str = HASH_OPTION,
) -> None:
    """Bundle FOLDER into a tar with correct Files entries (streamed, constant memory)."""
    from dataferry.ingest.bundler import bundle_size, sources_of, write_bundle

    try:
        total = bundle_size(_text_names(sources_of(folder), folder))
        with _bar(err_console.is_terminal) as bar:
            task = bar.add_task("bundling", total=total)
            size = write_bundle(
                folder,
                output,
                parse_pairs(meta, "--meta"),
                hashtype=hash_name,
                on_bytes=lambda n: bar.advance(task, n),
            )
    except (InvalidRequest, OSError) as exc:
        fail(str(exc))
    console.print(f"wrote {output} ({size} bytes)", highlight=False)


def _text_names(sources: list[Source], folder: Path) -> list[Source]:
    """``sources`` if every file name is UTF-8 text: metadata.txt names each file in
    JSON, and the service refuses (or could not store) a name that is not text."""
    for src in sources:
        if lone_surrogate(src.path) is not None:
            fail(
                f"the file name '{shown(src.path)}' in {shown(str(folder))} is not UTF-8 text, "
                "so a bundle cannot name it: rename the file"
            )
    return sources


def _file_chunks(path: Path, on_bytes: Callable[[int], object]) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            on_bytes(len(block))
            yield block


def ingest(
    path: Path = typer.Argument(..., help="A bundle file, or a folder to bundle on the fly."),
    meta: list[str] = META_OPTION,
    hash_name: str = HASH_OPTION,
    wait: bool = typer.Option(False, "--wait", help="Follow the job until it ends."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Upload a bundle (or a folder, bundled while it is sent), then follow its job."""
    from dataferry.ingest.bundler import (
        bundle_size,
        sources_of,
        stream_bundle,
        transaction_entries,
    )

    if not path.exists():
        fail(f"{path} does not exist")
    show = err_console.is_terminal and not as_json
    with client() as c, _bar(show) as bar:
        try:
            if path.is_dir():
                sources = _text_names(sources_of(path), path)
                task = bar.add_task("uploading", total=bundle_size(sources))
                body: Iterator[bytes] = stream_bundle(
                    sources,
                    transaction_entries(parse_pairs(meta, "--meta")),
                    hashtype=hash_name,
                    on_bytes=lambda n: bar.advance(task, n),
                )
                size = None
            else:
                if meta:
                    fail("--meta applies to a folder; a bundle file carries its metadata.txt")
                size = path.stat().st_size
                task = bar.add_task("uploading", total=size)
                body = _file_chunks(path, lambda n: bar.advance(task, n))
            state = c.upload_bundle(body, size)
        except InvalidRequest as exc:
            fail(str(exc))
        bar.stop()
        job_id = int(state["job_id"])
        doc = follow(c, job_id, show_bar=show) if wait else c.job(job_id)
    if as_json:
        print_json(doc)
    else:
        console.print(describe(doc), highlight=False)
        if wait and doc["state"] == "succeeded":
            console.print(
                f"transaction {job_id}: dataferry transactions show {job_id}", highlight=False
            )
    if doc["state"] in ("failed", "cancelled"):
        raise typer.Exit(1)


@transactions_app.command("show")
def transaction_show(
    transaction_id: int = typer.Argument(..., help="The transaction id (its ingest job id)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a transaction: submitter, project, instrument, key-values and files."""
    with client() as c:
        doc = c.transaction(transaction_id)
    if as_json:
        print_json(doc)
        return
    console.print(
        f"transaction {doc['transaction_id']} (job {doc['job_id']}, {doc['origin']}) "
        f"created {doc['created'][:19]}\n"
        f"  submitter {_shown(doc['submitter'])}  project {_shown(doc['project'])}  "
        f"instrument {_shown(doc['instrument'])}\n"
        f"  archive {doc['archive_endpoint']}:{doc['archive_path']}  "
        f"{doc['file_count']} files, {doc['byte_count']} bytes",
        highlight=False,
    )
    for kv in doc["key_values"]:
        console.print(f"  {kv['key']} = {kv['value']}", highlight=False)
    table = Table("id", "path", "size", "hash", "mimetype")
    for f in doc["files"]:
        table.add_row(
            str(f["file_id"]),
            f["path"],
            str(f["size"]),
            f"{f['hashtype']}:{f['hashsum'][:16]}…",
            f["mimetype"],
        )
    console.print(table)


@transactions_app.command("list")
def transaction_list(
    limit: int = typer.Option(50, help="How many (newest first)."),
    offset: int = typer.Option(0, help="Skip this many."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List ingested transactions, newest first."""
    with client() as c:
        page = c.transactions(limit=limit, offset=offset)
    if as_json:
        print_json(page["transactions"])
        return
    table = Table("id", "submitter", "project", "instrument", "files", "bytes", "created")
    for t in page["transactions"]:
        table.add_row(
            str(t["transaction_id"]),
            _shown(t["submitter"]),
            _shown(t["project"]),
            _shown(t["instrument"]),
            str(t["file_count"]),
            str(t["byte_count"]),
            t["created"][:19],
        )
    console.print(table)
    console.print(f"{len(page['transactions'])} of {page['total']} transactions", highlight=False)


def _shown(value: object) -> str:
    """A metadata value as a person reads it: a bundle that named no submitter shows
    "-", not Python's ``None``."""
    return "-" if value is None else str(value)
