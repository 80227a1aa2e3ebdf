"""``file://`` endpoints: a folder on this machine."""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Callable
from typing import Any
from urllib.parse import SplitResult, unquote

from fsspec.implementations.local import LocalFileSystem

from dataferry.endpoints.filesystem import MAX_MTIME_NS, EndpointFS, Skip
from dataferry.endpoints.options import Check
from dataferry.endpoints.paths import is_within
from dataferry.errors import Forbidden, InvalidRequest
from dataferry.text import check_file_name, undecodable


def _libc_call(name: str, *argtypes: Any) -> Any:
    """A C library function returning int, or None where this system has none
    (syncfs(2) and sync_file_range(2) are Linux-only and not in the os module)."""
    try:
        fn = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = list(argtypes)
    fn.restype = ctypes.c_int
    return fn


_syncfs = _libc_call("syncfs", ctypes.c_int)
_sync_file_range = _libc_call(
    "sync_file_range", ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint
)
_SYNC_FILE_RANGE_WRITE = 2


def _kept_mtime(ns: int) -> int | None:
    """A stat's modification time as we keep it: None before 1970 (see MAX_MTIME_NS)."""
    return ns if 0 <= ns <= MAX_MTIME_NS else None


def _root(url: SplitResult) -> str:
    if url.netloc not in ("", "localhost"):
        raise InvalidRequest(f"file URL host must be empty or localhost, not {url.netloc!r}")
    path = unquote(url.path)
    if not path.startswith("/"):
        raise InvalidRequest("file URL must hold an absolute path, e.g. file:///data/in")
    return os.path.normpath(path)


OPTIONS: dict[str, Check] = {}  # only the common ones (endpoints.options.COMMON)
SECRETS: frozenset[str] = frozenset()


def check(url: SplitResult, options: dict[str, Any]) -> None:
    root = _root(url)
    if not os.path.isdir(root):
        raise InvalidRequest(f"folder {root} does not exist or is not a folder")


class LocalEndpointFS(EndpointFS):
    resumable = True
    keeps_mtime = True

    def __init__(self, name: str, root: str, options: dict[str, Any]) -> None:
        super().__init__(name, LocalFileSystem(), root, options)
        self.real_root = os.path.realpath(self.root)

    def check_inside(self, rel: str) -> None:
        real = os.path.realpath(self.full(rel))
        if not is_within(self.real_root, real):
            raise InvalidRequest(
                f"path {rel!r} on endpoint {self.name!r} leads outside its root through a link"
            )

    def files_below(
        self, full: str, passed_over: Skip | None = None
    ) -> list[tuple[str, int, int | None]]:
        # os.scandir instead of fsspec's find: one stat per file instead of two, and
        # only links are resolved (a path reached through real folders below the real
        # root cannot leave it), instead of a realpath of every file.
        self.check_inside(self.rel(full))
        start = len(full.rstrip("/")) + 1
        files: list[tuple[str, int, int | None]] = []
        seen: set[tuple[int, int]] = set()

        def walk(folder: str) -> None:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:  # a link back to a folder being walked
                return
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as entries:
                for entry in entries:
                    if passed_over is not None and passed_over(entry.path[start:], entry.is_dir()):
                        continue  # not listed, so not checked either
                    if undecodable(entry.name):
                        check_file_name(self.rel(entry.path), self.name)
                    if entry.is_symlink():
                        self.check_inside(self.rel(entry.path))
                    if entry.is_dir():
                        walk(entry.path)
                    elif entry.is_file():
                        st = entry.stat()
                        files.append((entry.path, st.st_size, _kept_mtime(st.st_mtime_ns)))
                    else:
                        raise InvalidRequest(
                            f"{self.rel(entry.path)!r} on endpoint {self.name!r} is neither "
                            "a file nor a folder (a device, pipe, socket or broken link)"
                        )

        walk(full)
        return files

    def empty_folders_below(self, full: str, taken: Callable[[str], bool]) -> list[str]:
        # The same walk as files_below: links to folders inside the root are followed
        # (and a link back to a folder being walked is not), links out of it refused.
        self.check_inside(self.rel(full))
        start = len(full.rstrip("/")) + 1
        empty: list[str] = []
        seen: set[tuple[int, int]] = set()

        def walk(folder: str) -> None:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                return
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as listing:
                entries = list(listing)
            if not entries and folder != full and taken(folder[start:]):
                empty.append(folder[start:])
            for entry in entries:
                if entry.is_symlink():
                    self.check_inside(self.rel(entry.path))
                if entry.is_dir():
                    walk(entry.path)

        walk(full)
        return sorted(empty)

    def check_writable(self, rel: str) -> None:
        super().check_writable(rel)
        # The nearest existing folder at or above the target decides.
        probe = self.full(rel)
        while not os.path.exists(probe):
            probe = os.path.dirname(probe)
        if os.path.isfile(probe):
            probe = os.path.dirname(probe)
        if not os.access(probe, os.W_OK | os.X_OK):
            raise Forbidden(f"destination {rel or '/'!r} on endpoint {self.name!r} is not writable")

    # Plain os calls: the same semantics as fsspec's local filesystem, less overhead
    # per file (it matters when a transfer has thousands of small files).
    def open_read(self, full: str, size: int | None = None) -> Any:
        return open(full, "rb", buffering=0)

    def open_write(self, full: str) -> Any:
        return open(full, "wb", buffering=0)

    def open_read_at(self, full: str, offset: int) -> Any:
        f = open(full, "rb", buffering=0)  # noqa: SIM115 - the caller closes it
        f.seek(offset)
        return f

    def open_append(self, full: str) -> Any:
        return open(full, "ab", buffering=0)

    def mtime_of(self, full: str, info: dict[str, Any]) -> int | None:
        # fsspec's info has float seconds (about 0.2 µs off today): the exact ns instead
        try:
            return _kept_mtime(os.stat(full).st_mtime_ns)
        except OSError:  # gone since it was listed, or a broken link: no time to tell
            return None

    def set_mtime(self, fobj: Any, full: str, mtime_ns: int) -> None:
        # On the descriptor, after the last write (unbuffered: nothing left to flush
        # that would change it again). Access time too, as rsync -t and rclone do.
        os.utime(fobj.fileno(), ns=(mtime_ns, mtime_ns))

    def set_mtime_at(self, full: str, mtime_ns: int) -> None:
        os.utime(full, ns=(mtime_ns, mtime_ns))

    def make_durable(self, fobj: Any) -> None:
        os.fsync(fobj.fileno())

    def start_writeback(self, fobj: Any, offset: int, length: int) -> None:
        # Starts the disk writes of the block now, in the background, so the fsync
        # at the end waits for the last blocks only instead of the whole file (a
        # 1 GiB copy: fsync about 0.45 s after the data, about 0.01 s with this).
        # Only a hint: it gives no durability itself and its failure changes nothing.
        if _sync_file_range is not None:
            _sync_file_range(fobj.fileno(), offset, length, _SYNC_FILE_RANGE_WRITE)

    group_sync = True

    def make_durable_many(self, fulls: list[str]) -> None:
        # One syncfs(2) for the whole filesystem costs about what a single fsync
        # does; a batch of small files then needs one disk flush, not one each.
        if _syncfs is not None:
            fd = os.open(self.real_root, os.O_RDONLY)
            try:
                if _syncfs(fd) == 0:
                    return
            finally:
                os.close(fd)
        for full in fulls:  # no syncfs here (or it failed): one by one
            with open(full, "rb", buffering=0) as f:
                os.fsync(f.fileno())

    def size(self, full: str) -> int:
        return os.stat(full).st_size

    def exists(self, full: str) -> bool:
        return os.path.lexists(full)

    def info_or_none(self, full: str) -> dict[str, Any] | None:
        # lstat: a broken link is something there, as exists() says
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            return None
        kind = "directory" if stat.S_ISDIR(st.st_mode) else "file"
        return {"name": full, "size": st.st_size, "type": kind, "mtime": st.st_mtime}

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)  # atomic on one filesystem

    def remove(self, full: str) -> None:
        os.unlink(full)

    def makedirs(self, full: str) -> None:
        # Not os.makedirs: it recurses once per missing level, so a path thousands of
        # levels deep was a RecursionError (a 500) instead of the system's refusal.
        missing = []
        folder = full
        while not os.path.isdir(folder):
            missing.append(folder)
            up = os.path.dirname(folder)
            if up == folder:
                break
            folder = up
        # Refused before the first mkdir, so a refused path leaves no folders behind.
        name_max = os.pathconf(folder, "PC_NAME_MAX")
        if len(os.fsencode(full)) >= os.pathconf(folder, "PC_PATH_MAX") or any(
            len(os.fsencode(os.path.basename(m))) > name_max for m in missing
        ):
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), full)
        for folder in reversed(missing):
            try:
                os.mkdir(folder)
            except FileExistsError:
                if not os.path.isdir(folder):
                    # A file is in the way: say so, not "File exists".
                    raise NotADirectoryError(
                        errno.ENOTDIR, os.strerror(errno.ENOTDIR), folder
                    ) from None


def open_fs(
    name: str, url: SplitResult, options: dict[str, Any], secrets: dict[str, str]
) -> EndpointFS:
    root = _root(url)
    if not os.path.isdir(root):
        raise Forbidden(f"endpoint {name!r}: folder {root} is not there any more")
    return LocalEndpointFS(name, root, options)
