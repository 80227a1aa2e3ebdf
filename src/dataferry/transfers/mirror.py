"""``mirror`` mode's last step: remove what the destination has and the source does not.

Runs only after every file of the plan is in place (a failed or cancelled job deletes
nothing). Files the transfer's patterns or size and age limits leave out are not the
transfer's to judge and stay, as do temporaries (``.dftmp``) that another job may be
writing. The listing is made whole before the first deletion, so a destination that
cannot be listed (a pipe, a link out of the endpoint) fails the job with nothing
removed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from dataferry.endpoints.filesystem import EndpointFS
from dataferry.endpoints.paths import parent
from dataferry.transfers.filters import PathFilter
from dataferry.transfers.limits import Limits
from dataferry.transfers.plan import is_temporary


def extraneous(
    dst: EndpointFS,
    root: str,
    planned: set[str],
    chosen: PathFilter,
    limits: Limits | None = None,
    now_ns: int = 0,
    source_has: Callable[[str], bool] | None = None,
) -> list[str]:
    """Paths (relative to the full folder path ``root``) of files to remove, sorted.

    ``limits`` judge each destination file by its own size and time, as the patterns
    judge it by its path (and as rclone's filters do): one they leave out is not the
    transfer's to judge, so it stays, and so does one whose time is unknown to an age
    limit. Ages are measured back from ``now_ns``, the moment the plan used.
    ``source_has(rel)`` (given with limits) says whether the source has that file:
    then the limits left the source's file out, and its copy stays whatever its own
    size and time (a file grown past ``max_size`` keeps its older copy)."""
    if not dst.fs.exists(root):
        return []
    prefix = root.rstrip("/") + "/"
    found = []
    for entry in dst.files_below(root, chosen.passes_over if chosen else None):
        rel = entry[0][len(prefix) :]
        # what the patterns leave out files_below left out (not the transfer's to judge)
        if rel in planned or is_temporary(rel):
            continue
        if limits and not limits.takes(entry[1], entry[2], now_ns):
            continue
        found.append(rel)
    if source_has is not None:  # asked only of the few files about to go
        found = [rel for rel in found if not source_has(rel)]
    return sorted(found)


def remove(
    dst: EndpointFS,
    root: str,
    doomed: list[str],
    planned: set[str],
    checkpoint: Callable[[int], None],
    kept_folders: Iterable[str] = (),
) -> None:
    """Remove ``doomed`` below ``root``, then the folders that left empty and that the
    source does not have (``kept_folders``: the source's empty folders, when the
    transfer keeps them). ``checkpoint(n)`` runs after each file (progress, cancel)."""
    for n, rel in enumerate(doomed, 1):
        dst.remove(f"{root.rstrip('/')}/{rel}")
        checkpoint(n)
    keep = _folders_of(planned) | _folders_of(f"{f}/" for f in kept_folders)
    emptied = {f for f in _folders_of(doomed) if f not in keep}
    for folder in sorted(emptied, key=lambda f: f.count("/"), reverse=True):
        full = f"{root.rstrip('/')}/{folder}"
        try:
            if dst.fs.exists(full) and not dst.fs.ls(full):
                dst.remove_dir(full)
        except OSError:
            pass  # not empty after all, or a store without folders (S3)


def _folders_of(paths: Iterable[str]) -> set[str]:
    folders: set[str] = set()
    for path in paths:
        folder = parent(path)
        while folder and folder not in folders:
            folders.add(folder)
            folder = parent(folder)
    return folders
