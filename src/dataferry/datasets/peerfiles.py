"""The peer file protocol, server side: an endpoint's files as authorised peers see them.

Each endpoint says which peers may use it, in its options: ``peer_read`` and
``peer_write`` hold site names separated by commas (``*``: every registered site).
Uploads only ever write to temporary names (ending ``.dftmp``); ``commit`` makes
the upload durable, checks its size and renames it into place in one step.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import io
import os
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

from dataferry.datasets import receipts
from dataferry.datasets.batchheader import BatchFile, batch_files
from dataferry.endpoints import browse
from dataferry.endpoints.backends.local import LocalEndpointFS
from dataferry.endpoints.browse import Entry
from dataferry.endpoints.filesystem import EndpointFS
from dataferry.endpoints.paths import clean_relative, name, parent
from dataferry.endpoints.service import EndpointService
from dataferry.errors import Conflict, Forbidden, InvalidRequest, NotFound
from dataferry.transfers.copy import write_all
from dataferry.transfers.plan import TMP_SUFFIX

READ, WRITE = "peer_read", "peer_write"
#: metadata of one path: allowed to readers, and to writers (to place files safely)
STAT = "stat"
# Endpoint lookups are cached this long: a peer transfer makes thousands of requests.
_CACHE_SECONDS = 2.0


def allowed(options: dict[str, Any], permission: str, site: str) -> bool:
    names = {n.strip() for n in str(options.get(permission, "")).split(",") if n.strip()}
    return "*" in names or site in names


class PeerFiles:
    def __init__(self, endpoints: EndpointService) -> None:
        self.endpoints = endpoints
        self._cache: dict[str, tuple[float, EndpointFS]] = {}
        self._lock = threading.Lock()

    def _open(self, endpoint: str) -> EndpointFS:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(endpoint)
            if hit is not None and now - hit[0] < _CACHE_SECONDS:
                return hit[1]
        fs = self.endpoints.open(endpoint)
        with self._lock:
            self._cache[endpoint] = (now, fs)
        return fs

    def endpoint(self, site: str, endpoint: str, permission: str, path: str = "") -> EndpointFS:
        """The endpoint if ``site`` may use it so; the same 403 whether it exists or not.
        A site that may write may also read back its uploads (temporary names): that is
        how an interrupted upload is checked and continued."""
        try:
            fs = self._open(endpoint)
        except NotFound:
            fs = None
        ok = False
        if fs is not None:
            may_read = allowed(fs.options, READ, site)
            may_write = allowed(fs.options, WRITE, site)
            if permission == STAT:
                ok = may_read or may_write
            elif permission == READ:
                ok = may_read or (may_write and name(path).endswith(TMP_SUFFIX))
            else:
                ok = may_write
        if fs is None or not ok:
            what = "write" if permission == WRITE else "read"
            raise Forbidden(f"site {site!r} may not {what} endpoint {endpoint!r}")
        return fs

    @staticmethod
    def _path(fs: EndpointFS, path: str) -> tuple[str, str]:
        rel = clean_relative(path)
        fs.check_inside(rel)
        return rel, fs.full(rel)

    def stat(self, site: str, endpoint: str, path: str) -> Entry:
        fs = self.endpoint(site, endpoint, STAT, path)
        rel, _ = self._path(fs, path)
        return browse.stat(fs, endpoint, rel)

    def list(self, site: str, endpoint: str, path: str, recursive: bool = False) -> list[Entry]:
        fs = self.endpoint(site, endpoint, READ)
        rel, _ = self._path(fs, path)
        return browse.folder(fs, endpoint, rel, recursive)

    def read(
        self, site: str, endpoint: str, path: str, start: int = 0, end: int | None = None
    ) -> tuple[int, Iterator[bytes]]:
        """The file's size and its bytes ``[start, end]`` (inclusive) in large blocks."""
        fs = self.endpoint(site, endpoint, READ, path)
        rel, full = self._path(fs, path)
        try:
            size = fs.size(full)
            if fs.fs.isdir(full):
                raise InvalidRequest(f"{rel!r} on endpoint {endpoint!r} is a folder")
            f = fs.open_read(full)
        except (FileNotFoundError, NotADirectoryError):  # below a file: no such path
            raise NotFound(f"{rel!r} does not exist on endpoint {endpoint!r}") from None
        if start >= size:  # nothing to send (the door answers 416); no seek past the end
            f.close()
            return size, iter(())
        last = size - 1 if end is None else min(end, size - 1)
        if start:
            f.seek(start)

        def blocks() -> Iterator[bytes]:
            left = last - start + 1
            try:
                while left > 0:
                    block = f.read(min(left, 4 * 1024 * 1024))
                    if not block:
                        break
                    left -= len(block)
                    yield block
            finally:
                f.close()

        return size, blocks()

    def _upload_target(self, site: str, endpoint: str, path: str) -> tuple[EndpointFS, str, str]:
        fs = self.endpoint(site, endpoint, WRITE)
        rel, full = self._path(fs, path)
        if not name(rel).endswith(TMP_SUFFIX) or name(rel) == TMP_SUFFIX:
            raise InvalidRequest(
                f"uploads go to a temporary name ending {TMP_SUFFIX!r} (with a name before "
                f"it), then commit: {rel!r}"
            )
        fs.check_writable(rel)
        return fs, rel, full

    def open_upload(
        self, site: str, endpoint: str, path: str, offset: int, commit: str | None = None
    ) -> Upload:
        """A file to write an upload's bytes from ``offset`` on: 0 starts it again,
        otherwise ``offset`` must be the size already stored (resume). With ``commit``
        (where the upload is to be put in place next) that name is checked first, so
        a bad one is refused before a byte is written."""
        fs, rel, full = self._upload_target(site, endpoint, path)
        if offset < 0:
            raise InvalidRequest("offset must not be negative")
        if commit is not None:
            self._commit_target(fs, endpoint, rel, commit)
        folder = parent(full)
        if offset == 0:
            if folder:
                fs.makedirs(folder)
            return Upload(fs, fs.open_write(full), 0, full)
        have = fs.size(full) if fs.exists(full) else 0
        if have != offset:
            raise Conflict(f"{rel!r} holds {have} bytes, not {offset}: resume from {have}")
        if isinstance(fs, LocalEndpointFS):
            appended: BinaryIO = open(full, "ab", buffering=0)  # noqa: SIM115 - Upload closes it
        else:
            appended = fs.fs.open(full, "ab")
        receipts.forget(fs, appended)  # its digest covers the first part only
        return Upload(fs, appended, offset, full)

    def put_small(
        self,
        site: str,
        endpoint: str,
        path: str,
        data: bytes,
        commit: str | None,
        durable: bool,
        mtime: int | None = None,
    ) -> Entry:
        """A whole small file in one call: write the temporary name (given ``mtime``
        after its bytes), then (with ``commit``, checked before the write) sync it and
        rename it into place."""
        upload = self.open_upload(site, endpoint, path, 0, commit)
        try:
            upload.write(data)
            upload.finish(mtime)
        finally:
            upload.close()
        if commit is not None:
            return self.commit(site, endpoint, path, commit, len(data), durable)
        return Entry(clean_relative(path), "file", len(data))

    def start_batch(self, site: str, endpoint: str, files: builtins.list[Any]) -> BatchUpload:
        """A group of uploads to be put in place together (``POST /uploads/batch``):
        every file of the header is checked (``batchheader``, then each name against
        the endpoint) before any byte is written; the caller then writes the data as
        it arrives (``BatchUpload.write``) and ends with ``finish``."""
        fs = self.endpoint(site, endpoint, WRITE)
        items = batch_files(files)
        targets = [self._upload_target(site, endpoint, f.upload) for f in items]
        for f, (_, up_rel, _) in zip(items, targets, strict=True):
            # where each goes, as commit checks it: a final path below a file, found
            # only when its turn to be renamed came, left the files before it in place
            self._commit_target(fs, endpoint, up_rel, f.path)
        return BatchUpload(self, site, endpoint, fs, items, [full for _, _, full in targets])

    def upload_size(self, site: str, endpoint: str, path: str) -> int:
        """The bytes an upload holds (0 if none): where to resume it."""
        fs, rel, full = self._upload_target(site, endpoint, path)
        if not fs.exists(full):
            return 0
        if fs.fs.isdir(full):  # its size is the folder's own, no offset to resume from
            raise Conflict(f"{rel!r} on endpoint {endpoint!r} is a folder, not an upload")
        return fs.size(full)

    def sync(self, site: str, endpoint: str, uploads: builtins.list[str]) -> None:
        """Make several uploads durable at once (one filesystem sync where it can)."""
        fs = self.endpoint(site, endpoint, WRITE)
        fulls = [self._upload_target(site, endpoint, u)[2] for u in uploads]
        fs.make_durable_many([f for f in fulls if fs.exists(f)])

    def commit(
        self,
        site: str,
        endpoint: str,
        upload: str,
        path: str,
        size: int | None,
        durable: bool = True,
        mtime: int | None = None,
    ) -> Entry:
        """Check the upload's size, give it ``mtime`` (ns, if given), make it durable
        (unless ``sync`` already did) and rename it to ``path`` in one step."""
        fs, up_rel, up_full = self._upload_target(site, endpoint, upload)
        rel, full = self._commit_target(fs, endpoint, up_rel, path)
        if not fs.exists(up_full):
            raise NotFound(f"upload {up_rel!r} does not exist on endpoint {endpoint!r}")
        stored = fs.size(up_full)
        if size is not None and stored != size:
            raise Conflict(f"upload {up_rel!r} holds {stored} bytes, expected {size}")
        if mtime is not None:  # before the sync: the rename keeps it
            receipts.set_mtime_keeping(fs, up_full, mtime)
        if durable and isinstance(fs, LocalEndpointFS):
            # concurrent commits' fsyncs share journal commits (ext4 batches them)
            with open(up_full, "rb", buffering=0) as f:
                os.fsync(f.fileno())
        if parent(full):
            fs.makedirs(parent(full))
        fs.rename(up_full, full)
        return Entry(rel, "file", stored)

    def _commit_target(
        self, fs: EndpointFS, endpoint: str, up_rel: str, path: str
    ) -> tuple[str, str]:
        """Where the upload ``up_rel`` may be put in place: inside the endpoint, not
        its root, not the upload itself, not a folder, not below a file."""
        rel, full = self._path(fs, path)
        if not rel:
            raise InvalidRequest("cannot commit onto the endpoint's root")
        if rel == up_rel:
            raise InvalidRequest(f"cannot commit upload {up_rel!r} onto itself")
        fs.check_writable(rel)
        if fs.exists(full) and fs.fs.isdir(full):
            raise Conflict(f"{rel!r} on endpoint {endpoint!r} is a folder")
        # On a file system (not an object store, where "a.txt/x" is a key like any
        # other) the nearest of its folders that exists must be one: usually its
        # parent, one stat.
        above = parent(rel) if isinstance(fs, LocalEndpointFS) else ""
        while above and not fs.fs.isdir(fs.full(above)):
            if fs.exists(fs.full(above)):
                raise Conflict(f"{above!r} on endpoint {endpoint!r} is a file, not a folder")
            above = parent(above)
        return rel, full

    def delete(self, site: str, endpoint: str, path: str) -> None:
        fs = self.endpoint(site, endpoint, WRITE)
        rel, full = self._path(fs, path)
        if not rel:
            raise InvalidRequest("cannot delete the endpoint's root")
        fs.check_writable(rel)
        try:
            if fs.fs.isdir(full):
                if fs.fs.ls(full):
                    raise Conflict(f"folder {rel!r} on endpoint {endpoint!r} is not empty")
                fs.fs.rmdir(full)
            else:
                fs.remove(full)
        except (FileNotFoundError, NotADirectoryError):  # below a file: no such path
            raise NotFound(f"{rel!r} does not exist on endpoint {endpoint!r}") from None

    def mkdir(self, site: str, endpoint: str, path: str) -> str:
        """Create the folder ``path`` and its parents; its path, cleaned."""
        fs = self.endpoint(site, endpoint, WRITE)
        rel, full = self._path(fs, path)
        fs.check_writable(rel)
        if fs.exists(full) and not fs.fs.isdir(full):
            raise Conflict(f"{rel!r} on endpoint {endpoint!r} is a file")
        fs.makedirs(full)
        return rel


class Upload:
    """An upload's bytes on their way into its temporary file: written in full and,
    when the file is written from its first byte, hashed: ``finish`` keeps that
    SHA-256 on the file as its receipt (see ``receipts``)."""

    def __init__(self, fs: EndpointFS, f: BinaryIO, offset: int, full: str) -> None:
        self.fs = fs
        self.f = f
        self.full = full
        self.hasher = hashlib.sha256() if offset == 0 and receipts.kept_on(fs) else None

    def write(self, data: bytes | memoryview) -> None:
        write_all(self.f, data)
        if self.hasher is not None:
            self.hasher.update(data)

    def writev(self, views: builtins.list[memoryview]) -> None:
        """Several received chunks in order, in one writev(2) on a plain file."""
        _write_views(self.f, views)
        if self.hasher is not None:
            for view in views:
                self.hasher.update(view)

    def finish(self, mtime: int | None = None) -> None:
        """Every byte is written: give it ``mtime`` (ns, if given; before the receipt,
        whose fingerprint holds the time), keep the receipt digest, then close."""
        if mtime is not None and not self.f.closed:
            self.fs.set_mtime(self.f, self.full, mtime)
        if self.hasher is not None and not self.f.closed:
            receipts.record(self.fs, self.f, self.hasher.hexdigest())
        self.close()

    def close(self) -> None:
        self.f.close()


# At most this many buffers per writev(2) (Linux takes up to 1024).
_IOV_MAX = 512


def _write_views(f: Any, views: builtins.list[memoryview]) -> None:
    """Write every byte of ``views`` in order: one writev(2) for many received chunks
    on a plain file (no joining copy), else one write per chunk."""
    if not isinstance(f, io.FileIO):
        for view in views:
            write_all(f, view)
        return
    fd = f.fileno()
    while views:
        n = os.writev(fd, views[:_IOV_MAX])
        while views and n >= len(views[0]):
            n -= len(views[0])
            views = views[1:]
        if n:
            views = [views[0][n:], *views[1:]]


class BatchUpload:
    """One ``POST /uploads/batch`` on the receiving side: the bytes of its files are
    written to their temporary names as the body arrives (in runs of received
    chunks, not as one body held in memory), then ``finish`` syncs the group once,
    checks each size and renames each into place, like ``commit`` does. ``abort``
    removes what was written when the body is refused or cut short."""

    def __init__(
        self,
        files: PeerFiles,
        site: str,
        endpoint: str,
        fs: EndpointFS,
        items: builtins.list[BatchFile],
        fulls: builtins.list[str],
    ) -> None:
        self.files = files
        self.site = site
        self.endpoint = endpoint
        self.fs = fs
        self.items = items
        self.fulls = fulls
        self.expected = sum(f.size for f in items if f.data)
        self.received = 0
        self._index = 0  # the file the next byte belongs to
        self._left = 0  # bytes of it still to come
        self._open: Upload | None = None
        self._written: builtins.list[str] = []
        # folders this batch created: (folder, the highest one of its parents it made)
        self._made: builtins.list[tuple[str, str]] = []
        self._folders: set[str] = set()

    def _next_file(self) -> None:
        """Move to the next file that carries data, creating it (empty files too)."""
        while self._index < len(self.items):
            item = self.items[self._index]
            if not item.data:
                self._index += 1
                continue
            full = self.fulls[self._index]
            folder = parent(full)
            if folder and folder not in self._folders:
                self._folders.add(folder)
                top = folder
                while parent(top) and not self.fs.exists(parent(top)):
                    top = parent(top)
                if not self.fs.exists(top):
                    self.fs.makedirs(folder)
                    self._made.append((folder, top))
            self._open = Upload(self.fs, self.fs.open_write(full), 0, full)
            self._written.append(full)
            self._left = item.size
            if item.size:
                return
            self._close_file()
        self._open = None

    def _close_file(self) -> None:
        if self._open is not None:
            self._open.finish(self.items[self._index].mtime)
            self._open = None
        self._index += 1

    def write(self, chunks: Sequence[bytes]) -> None:
        """The next received bytes of the body's data, in order."""
        views: builtins.list[memoryview] = []
        for chunk in chunks:
            view = memoryview(chunk)
            self.received += len(view)
            if self.received > self.expected:
                raise InvalidRequest("batch: the data does not add up to the sizes given")
            while view:
                if self._open is None:
                    self._next_file()
                assert self._open is not None  # data beyond the sizes was refused above
                take = view[: self._left]
                views.append(take)
                view = view[len(take) :]
                self._left -= len(take)
                if not self._left:
                    self._open.writev(views)
                    views = []
                    self._close_file()
        if views and self._open is not None:
            self._open.writev(views)

    def finish(self) -> builtins.list[Entry]:
        """Sync the group, then check and rename each file; files before a failing one
        stay in place."""
        if self.received != self.expected:
            raise InvalidRequest("batch: the data does not add up to the sizes given")
        self._next_file()  # all data is written: this creates the empty files left
        fs = self.fs
        for item, full in zip(self.items, self.fulls, strict=True):
            if not item.data and item.mtime is not None:  # uploaded before: by its name
                receipts.set_mtime_keeping(fs, full, item.mtime)
        fs.make_durable_many([f for f in self.fulls if fs.exists(f)])
        return [
            self.files.commit(self.site, self.endpoint, f.upload, f.path, f.size, durable=False)
            for f in self.items
        ]

    def abort(self) -> None:
        """Remove the temporaries written so far and the folders made for them."""
        if self._open is not None:
            self._open.close()
            self._open = None
        for full in self._written:
            with contextlib.suppress(OSError):
                self.fs.remove(full)
        for folder, top in sorted(self._made, key=lambda made: len(made[0]), reverse=True):
            try:
                while not self.fs.fs.ls(folder):
                    self.fs.remove_dir(folder)
                    if folder == top:
                        break
                    folder = parent(folder)
            except OSError:
                pass
