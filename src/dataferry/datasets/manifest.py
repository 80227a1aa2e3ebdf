"""A dataset's manifest: every file's path, size and sha256, computed from storage."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dataferry.endpoints.filesystem import EndpointFS
from dataferry.endpoints.paths import join
from dataferry.transfers.plan import plan

CHUNK = 8 * 1024 * 1024


def sha256_of(fs: EndpointFS, full: str) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with fs.open_read(full) as f:
        while block := f.read(CHUNK):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


def compute(
    fs: EndpointFS, rel: str, on_file: Callable[[int], None], threads: int = 4
) -> list[dict[str, Any]]:
    """Hash every file under ``rel`` (paths relative to it), a few files at a time:
    hashlib releases the GIL, so the cores share the work."""
    files = [f for f in plan(fs, rel) if f.path]
    if not files and fs.fs.isfile(fs.full(rel)):
        raise ValueError("a dataset is a folder, not a single file")

    def one(path: str) -> dict[str, Any]:
        size, digest = sha256_of(fs, fs.full(join(rel, path)))
        on_file(size)
        return {"path": path, "size": size, "sha256": digest}

    with ThreadPoolExecutor(threads, "manifest") as pool:
        return list(pool.map(one, [f.path for f in files]))


def totals(manifest: list[dict[str, Any]]) -> tuple[int, int]:
    return len(manifest), sum(int(f["size"]) for f in manifest)
