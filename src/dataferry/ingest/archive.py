"""Writing one transaction's files into the archive endpoint, all or nothing.

Each file is streamed once through its hash into a temporary name (the same
helpers transfers use), its digest compared with the one ``metadata.txt``
declares; only when every file is written and verified are they made durable,
size-checked and renamed into place. Any failure removes the transaction's
folder: nothing of a refused bundle stays in the archive.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from typing import Any

from dataferry.endpoints.filesystem import EndpointFS
from dataferry.endpoints.paths import join, parent
from dataferry.ingest.tasks import BundleError
from dataferry.transfers.copy import (
    Written,
    discard,
    stream_file,
    temporary_name,
)


class ArchiveWriter:
    def __init__(
        self,
        fs: EndpointFS,
        folder: str,
        *,
        job_id: int,
        chunk: int,
        task: str,
        on_bytes: Callable[[int], None],
    ) -> None:
        self.fs = fs
        self.folder = folder  # relative to the endpoint root, e.g. "1234"
        self.job_id = job_id
        self.chunk = chunk
        self.task = task
        self.on_bytes = on_bytes
        self.written: list[Written] = []
        self._made: set[str] = set()

    def rel(self, path: str) -> str:
        return join(self.folder, path)

    def clear(self) -> None:
        """Remove the transaction's folder (left by an interrupted earlier attempt)."""
        full = self.fs.full(self.folder)
        if self.fs.exists(full):
            self.fs.fs.rm(full, recursive=True)

    def write(self, path: str, fin: Any, size: int, hashtype: str, expected: str) -> None:
        """Stream ``fin`` into a temporary name for ``path``; refuse a wrong size or hash."""
        final = self.fs.full(self.rel(path))
        folder = parent(final)
        if folder not in self._made:
            self.fs.makedirs(folder)
            self._made.add(folder)
        tmp = temporary_name(final, self.job_id)
        hasher = hashlib.new(hashtype)
        try:
            with self.fs.open_write(tmp) as fout:
                n = stream_file(
                    fin,
                    fout,
                    hasher,
                    self.chunk,
                    self.on_bytes,
                    size=size,
                    writeback=self.fs.start_writeback,
                )
                if not self.fs.group_sync:
                    self.fs.make_durable(fout)
        except BaseException:
            discard(self.fs, tmp)
            raise
        digest = hasher.hexdigest()
        if n != size:
            discard(self.fs, tmp)
            raise BundleError(
                self.task, f"data/{path}: {n} bytes arrived but metadata.txt declares {size}"
            )
        if digest != expected.lower():
            discard(self.fs, tmp)
            raise BundleError(
                self.task,
                f"data/{path}: {hashtype} is {digest} but metadata.txt declares {expected}",
            )
        self.written.append(Written(tmp, final, n, f"{hashtype}:{digest}"))

    def publish(self) -> None:
        """Make every written file durable, check its size, and rename it into place."""
        if self.fs.group_sync and self.written:
            self.fs.make_durable_many([w.tmp for w in self.written])
        for item in self.written:
            stored = self.fs.size(item.tmp)
            if stored != item.size:
                raise BundleError(
                    self.task, f"{item.final}: wrote {item.size} bytes but {stored} are stored"
                )
            self.fs.rename(item.tmp, item.final)

    def abort(self) -> None:
        """Remove everything this transaction put in the archive."""
        for item in self.written:
            discard(self.fs, item.tmp)
        with contextlib.suppress(Exception):  # else the next attempt clears it
            self.clear()
