"""What is at a path of an endpoint: one entry, or a folder's entries (``rclone lsl``,
Globus's file browser). Operators browse with it (REST, CLI, dashboard); peers see
the same entries through the peer file protocol, with their own permission check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataferry.endpoints.filesystem import EndpointFS
from dataferry.endpoints.paths import clean_relative
from dataferry.endpoints.service import EndpointService
from dataferry.errors import DataferryError, InvalidRequest, NotFound
from dataferry.text import check_file_name
from dataferry.transfers.run import classify

#: entries one listing answers at most (a recursive listing of a big tree is paged)
MAX_LIMIT = 100_000
DEFAULT_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Entry:
    path: str  # relative to the endpoint's root
    type: str  # "file" | "directory"
    size: int
    mtime: int | None = None  # a file's modification time, ns since 1970

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"path": self.path, "type": self.type, "size": self.size}
        if self.mtime is not None:
            doc["mtime"] = self.mtime
        return doc


@dataclass(frozen=True, slots=True)
class Listing:
    endpoint: str
    path: str  # as asked, cleaned ("" is the root)
    type: str  # what ``path`` is: "file" (entries: itself) or "directory"
    entries: list[Entry]  # this page
    total: int  # entries in all
    offset: int

    def document(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "path": self.path,
            "type": self.type,
            "entries": [e.document() for e in self.entries],
            "total": self.total,
            "offset": self.offset,
            "truncated": self.offset + len(self.entries) < self.total,
        }


def _missing(rel: str, endpoint: str) -> NotFound:
    return NotFound(f"{rel or '/'!r} does not exist on endpoint {endpoint!r}")


def stat(fs: EndpointFS, endpoint: str, rel: str) -> Entry:
    """The entry at ``rel`` (already cleaned and checked to be inside the endpoint)."""
    full = fs.full(rel)
    try:
        info = fs.fs.info(full)
    except (FileNotFoundError, NotADirectoryError):  # below a file: no such path
        raise _missing(rel, endpoint) from None
    if info["type"] == "directory":
        return Entry(rel, "directory", 0)
    return Entry(rel, "file", int(info.get("size") or 0), fs.mtime_of(full, info))


def folder(fs: EndpointFS, endpoint: str, rel: str, recursive: bool = False) -> list[Entry]:
    """The entries of the folder ``rel``, by path; ``recursive``: everything below it."""
    full = fs.full(rel)
    try:
        if not fs.fs.isdir(full):
            if fs.fs.exists(full):
                raise InvalidRequest(f"{rel!r} on endpoint {endpoint!r} is not a folder")
            raise _missing(rel, endpoint)
    except (FileNotFoundError, NotADirectoryError):  # below a file: no such path
        raise _missing(rel, endpoint) from None
    return _contents(fs, endpoint, rel, recursive)


def _contents(fs: EndpointFS, endpoint: str, rel: str, recursive: bool) -> list[Entry]:
    """``folder`` once ``rel`` is known to be a folder (``listing`` has its stat)."""
    full = fs.full(rel)
    try:
        if recursive:
            found = fs.fs.find(full, withdirs=True, detail=True)
            items = [(p, d) for p, d in found.items() if p.rstrip("/") != full.rstrip("/")]
        else:
            items = [(d["name"], d) for d in fs.fs.ls(full, detail=True)]
    except (FileNotFoundError, NotADirectoryError):  # gone meanwhile, or below a file
        raise _missing(rel, endpoint) from None
    out = []
    for p, d in sorted(items):
        sub = fs.rel(p.rstrip("/"))
        check_file_name(sub, endpoint)
        if d.get("islink") and d["type"] not in ("file", "directory"):
            d = _followed(fs, p, d)
        if d["type"] == "directory":
            out.append(Entry(sub, "directory", 0))  # not the folder's own block size
        else:
            out.append(Entry(sub, "file", int(d.get("size") or 0), fs.mtime_of(p, d)))
    return out


def _followed(fs: EndpointFS, full: str, info: dict[str, Any]) -> dict[str, Any]:
    """A link's entry as what it leads to (a folder is shown as a folder, as transfers
    take it; one leading out of the endpoint is refused when opened, by name)."""
    try:
        target: dict[str, Any] = fs.fs.info(full)
    except OSError:  # a dangling link: shown as the link itself
        return info
    return target


def _page_bound(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRequest(f"{what} must be a whole number from {low} to {high}, not {value!r}")
    return value


def listing(
    endpoints: EndpointService,
    endpoint: Any,
    path: Any = "",
    recursive: Any = False,
    limit: Any = DEFAULT_LIMIT,
    offset: Any = 0,
) -> Listing:
    """What is at ``ENDPOINT:PATH``: a folder's entries (paged), or the file itself.
    Arguments are checked here, as every door (RPC's included) passes them on."""
    for what, value in (("endpoint", endpoint), ("path", path)):
        if not isinstance(value, str):
            raise InvalidRequest(f"{what} must be text, not {value!r}")
    if not isinstance(recursive, bool):
        raise InvalidRequest(f"recursive must be true or false, not {recursive!r}")
    limit = _page_bound(limit, "limit", 1, MAX_LIMIT)
    offset = _page_bound(offset, "offset", 0, 2**63 - 1)
    rel = clean_relative(path)
    fs = endpoints.open(endpoint)
    try:
        fs.check_inside(rel)
        try:
            here = stat(fs, endpoint, rel)
            entries = [here] if here.type == "file" else _contents(fs, endpoint, rel, recursive)
        except DataferryError:
            raise
        except Exception as exc:  # a protocol's driver error: say what it means
            raise classify(exc, f"listing {endpoint}:{rel}", fs) from exc
    finally:
        fs.close()
    return Listing(endpoint, rel, here.type, entries[offset : offset + limit], len(entries), offset)
