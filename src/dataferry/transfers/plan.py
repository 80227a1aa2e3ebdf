"""Expand a transfer's source into the files to copy."""

from __future__ import annotations

from dataferry.endpoints.filesystem import EndpointFS
from dataferry.transfers.filters import PathFilter
from dataferry.transfers.limits import Limits
from dataferry.transfers.store import PlannedFile

# Our own temporary files never count as source files.
TMP_SUFFIX = ".dftmp"


def is_temporary(path: str) -> bool:
    return path.endswith(TMP_SUFFIX)


def plan(src: EndpointFS, rel: str, chosen: PathFilter | None = None) -> list[PlannedFile]:
    """Every file under ``rel`` (or ``rel`` itself), with paths relative to ``rel``;
    of a folder, only the files ``chosen`` takes (include/exclude patterns).

    Each carries the source's modification time in nanoseconds where the protocol
    tells it (else None: the copy then gets no time set). A file source gives one
    entry with the empty path. Links leaving the
    endpoint's root are refused (``check_inside``)."""
    full = src.full(rel)
    info = src.fs.info(full)
    if info["type"] != "directory":
        src.check_inside(rel)
        return [PlannedFile("", int(info["size"] or 0), src.mtime_of(full, info))]
    files: list[PlannedFile] = []
    listed = src.files_below(full, chosen.passes_over if chosen else None)
    for path, size, mtime in sorted(listed, key=lambda f: f[0]):
        sub = src.rel(path)
        inner = sub[len(rel) + 1 :] if rel else sub
        if not is_temporary(inner):  # chosen: files_below left out what it does not take
            files.append(PlannedFile(inner, size, mtime))
    return files


def empty_folders(src: EndpointFS, rel: str, chosen: PathFilter) -> list[str]:
    """The folders under the folder ``rel`` that hold nothing and that the patterns do
    not leave out, relative to ``rel`` (a transfer with ``empty_folders`` creates
    them at the destination)."""
    return src.empty_folders_below(src.full(rel), chosen.takes_folder)


def choose(files: list[PlannedFile], limits: Limits, now_ns: int) -> tuple[list[PlannedFile], int]:
    """The files ``limits`` takes (sizes and ages measured back from ``now_ns``), and
    how many an age limit left out because their time is unknown.

    Applied right after the listing, not inside it (``files_below``'s ``passed_over``):
    a listing yields each file's size and time already, so nothing is read twice, and
    a size or an age never lets a listing pass a folder over: only patterns can."""
    if not limits:
        return files, 0
    taken = [f for f in files if limits.takes(f.size, f.mtime, now_ns)]
    unknown = 0
    if limits.ages:
        # left out for their time alone (a size limit would have taken them)
        unknown = sum(1 for f in files if f.mtime is None and limits.takes_size(f.size))
    return taken, unknown
