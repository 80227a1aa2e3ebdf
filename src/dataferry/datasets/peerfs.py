"""``dataferry://SITE/ENDPOINT/PATH``: another instance's endpoint over the peer file
protocol, as an fsspec filesystem and an endpoint backend.

Reads are streamed (``GET`` with ``Range`` from any offset); writes go to a temporary
name in large ``PUT`` blocks at explicit offsets (a resumed upload continues from
the size the peer holds) and are put in place by ``commit``. An optional field of
the protocol (a file's modification time) goes only to a peer whose hello lists it
(``peercaps``). The site is looked up in this instance's sites registry (see
:func:`configure`).
"""

from __future__ import annotations

import json
import logging
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, unquote

from fsspec.spec import AbstractFileSystem

from dataferry.datasets.peer import PeerClient
from dataferry.datasets.peercaps import HELLO_PATH, MTIME, PeerFeatures
from dataferry.datasets.sites import NAME_RE, SiteAccess
from dataferry.endpoints.filesystem import EndpointFS
from dataferry.endpoints.options import Check
from dataferry.endpoints.paths import clean_relative
from dataferry.errors import InvalidRequest, NotFound, PermanentError, TransientError
from dataferry.text import cut, lone_surrogate_in

API = "/api/v1/peer/endpoints"
BLOCK = 8 * 1024 * 1024
BATCH_TYPE = "application/x-dataferry-batch"

log = logging.getLogger(__name__)
_HEADER_LEN = struct.Struct(">I")
# The receiver holds a batch's header in memory until it is whole: bounded.
MAX_HEADER = 16 * 1024 * 1024
# A request body is handed to the HTTP client in pieces of at most this size: its
# socket write copies what one send() did not take, so one large bytes object
# costs copies quadratic in its size (a 16 MiB body: several times its size).
SEND_PIECE = 1024 * 1024

Body = list[bytes | memoryview]


def pieces(parts: list[bytes]) -> Body:
    """``parts`` as one request body, none of its pieces larger than ``SEND_PIECE``
    (no bytes are copied here)."""
    out: Body = []
    for part in parts:
        if len(part) <= SEND_PIECE:
            out.append(part)
            continue
        view = memoryview(part)
        out.extend(view[i : i + SEND_PIECE] for i in range(0, len(part), SEND_PIECE))
    return out


def send_body(parts: list[bytes]) -> dict[str, Any]:
    """Keyword arguments that send ``parts`` as a request body of known length (a
    list, not a generator, so a retried request can send it again)."""
    size = sum(len(p) for p in parts)
    return {"content": pieces(parts), "headers": {"Content-Length": str(size)}}


def batch_parts(files: list[dict[str, Any]], blobs: list[bytes]) -> list[bytes]:
    """A batch upload's body, in parts: the length of a JSON header (4 bytes,
    big-endian), the header ``{"files": [{"upload", "path", "size", "data"[,
    "mtime"]}]}``, then
    the bytes of each file whose ``data`` is true, one after the other, ``size``
    bytes each."""
    header = json.dumps({"files": files}).encode()
    return [_HEADER_LEN.pack(len(header)) + header, *blobs]


def batch_body(files: list[dict[str, Any]], blobs: list[bytes]) -> bytes:
    """The whole batch body as one bytes object (see ``batch_parts``)."""
    return b"".join(batch_parts(files, blobs))


def batch_header(start: bytes | bytearray) -> tuple[list[dict[str, Any]], int] | None:
    """The header's files and where the data begins, from the first bytes of a batch
    body; None while more bytes are needed; ``ValueError`` if malformed."""
    if len(start) < _HEADER_LEN.size:
        return None
    (n,) = _HEADER_LEN.unpack_from(start)
    if n > MAX_HEADER:
        raise ValueError(f"batch header of {n} bytes (at most {MAX_HEADER})")
    end = _HEADER_LEN.size + n
    if end > len(start):
        return None
    raw = bytes(start[_HEADER_LEN.size : end])
    try:
        doc = json.loads(raw, object_pairs_hook=each_key_once)
    except RecursionError:  # nested deeper than the parser goes: not a file list
        raise ValueError("batch header is nested too deep") from None
    except RepeatedKey as exc:
        raise ValueError(f"batch header {exc}") from None
    bad = lone_surrogate_in(raw, doc)
    if bad is not None:  # no file name can hold one (the body is not JSON-typed)
        raise ValueError(f"batch header holds {bad[:60]!r}: a lone surrogate is not Unicode text")
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, list):
        raise ValueError("batch header needs a list of files")
    unknown = sorted(str(k) for k in doc if k != "files")
    if unknown:
        listed = cut(", ".join(unknown))
        raise ValueError(f"batch header has unknown field(s) {listed}: it is {{'files': [...]}}")
    return files, end


class RepeatedKey(ValueError):
    """A JSON object of the protocol gives a key twice."""


def each_key_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object of the protocol (``json.loads``'s ``object_pairs_hook``); a key
    given twice is refused (which one counts would be a guess). The documents are
    small (a batch header at most ``MAX_HEADER``): one dict per object, as ``json``
    builds anyway."""
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise RepeatedKey(f"gives {key[:40]!r} twice in one object")
        doc[key] = value
    return doc


@dataclass(frozen=True)
class PeerConfig:
    """How this process reaches sites: set once by the datasets capability."""

    resolve: Callable[[str], SiteAccess]
    my_site: str
    verify: ssl.SSLContext | bool = True
    timeout: float = 60.0


_config: PeerConfig | None = None


def configure(config: PeerConfig) -> None:
    global _config
    _config = config


def _split(url: SplitResult) -> tuple[str, str, str]:
    site = url.netloc
    parts = [p for p in unquote(url.path).split("/") if p]
    if not site or not NAME_RE.fullmatch(site) or not parts:
        raise InvalidRequest(f"peer URL {url.geturl()!r} must be dataferry://SITE/ENDPOINT[/PATH]")
    return site, parts[0], clean_relative("/".join(parts[1:]))


def _rel(path: str) -> str:
    return path.strip("/")


class _Reader:
    """A file read as one streamed ``GET``; ``seek`` starts a new ranged one."""

    def __init__(self, fs: PeerFileSystem, path: str) -> None:
        self.fs = fs
        self.path = path
        self.pos = 0
        self._response: Any = None
        self._chunks: Iterator[bytes] | None = None
        self._buf = b""
        self.closed = False

    def _start(self) -> None:
        headers = {"Range": f"bytes={self.pos}-"} if self.pos else {}
        self._response = self.fs.client.stream(
            "GET", f"{self.fs.base}/files", params={"path": _rel(self.path)}, headers=headers
        )
        self._chunks = self._response.iter_raw(BLOCK)

    def read(self, n: int = -1) -> bytes:
        if self._chunks is None:
            self._start()
        assert self._chunks is not None
        out = [self._buf]
        have = len(self._buf)
        while n < 0 or have < n:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                break
            except Exception as exc:
                raise TransientError(f"reading {self.path} from {self.fs.site}: {exc!r}") from exc
            out.append(chunk)
            have += len(chunk)
        data = b"".join(out)
        if n >= 0 and len(data) > n:
            data, self._buf = data[:n], data[n:]
        else:
            self._buf = b""
        self.pos += len(data)
        return data

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0:
            raise ValueError("only absolute seeks")
        if offset != self.pos:
            self._close_stream()
            self.pos = offset
            self._buf = b""
        return self.pos

    def tell(self) -> int:
        return self.pos

    def _close_stream(self) -> None:
        if self._response is not None:
            self._response.close()
        self._response = None
        self._chunks = None

    def close(self) -> None:
        self._close_stream()
        self.closed = True

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _own_bytes(data: Any) -> bytes:
    """``data`` as bytes that stay as they are while held: a view of a whole bytes
    object is that object (bytes cannot change, no copy needed); anything else, such
    as a view of a reused buffer, is copied."""
    if isinstance(data, memoryview):
        whole = data.obj
        if isinstance(whole, bytes) and data.contiguous and data.nbytes == len(whole):
            return whole
    return bytes(data)


class _Writer:
    """Buffers writes into large blocks, each one ``PUT`` at its offset.

    A file smaller than one block is not sent at all until it is put in place: the
    ``rename`` (commit) then sends it in one request that writes the temporary name,
    syncs it and renames it on the peer (one round trip per small file)."""

    def __init__(self, fs: PeerFileSystem, path: str, offset: int = 0) -> None:
        self.fs = fs
        self.path = path
        self.offset = offset
        self.sent_any = offset > 0
        self._parts: list[bytes] = []
        self._pending = 0
        self.closed = False

    def write(self, data: Any) -> int:
        block = _own_bytes(data)
        self._parts.append(block)
        self._pending += len(block)
        if self._pending >= BLOCK:
            self.flush()
        return len(block)

    def flush(self) -> None:
        if not self._parts and self.sent_any:
            return
        parts = self._parts
        self._parts, self._pending = [], 0
        answer = self.fs.client.json(
            "PUT",
            f"{self.fs.base}/uploads",
            params={"path": _rel(self.path), "offset": self.offset},
            **send_body(parts),
        )
        self.sent_any = True
        self.offset = int(answer["size"])
        self.fs.note_size(self.path, self.offset)

    def tell(self) -> int:
        return self.offset + self._pending

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.sent_any:
            self.flush()
        else:  # small: held until the commit sends it
            self.fs.hold(self.path, b"".join(self._parts))
            self._parts, self._pending = [], 0

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.closed = True


class PeerFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """fsspec view of one endpoint of a peer; paths are ``/PATH`` within that endpoint."""

    protocol = "dataferry"
    cachable = False

    def __init__(self, site: str, endpoint: str, client: PeerClient, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.site = site
        self.endpoint = endpoint
        self.client = client
        self.base = f"{API}/{endpoint}"
        self._sizes: dict[str, int] = {}
        self._held: dict[str, bytes] = {}
        # modification times (ns) to give uploads when they are put in place
        self._mtimes: dict[str, int] = {}
        # what the peer takes beyond the base protocol: asked at the first write that
        # would carry such a field (see _times), once for this filesystem's life
        self.features = PeerFeatures(site, self._hello)
        self._sizes_lock = threading.Lock()

    def _hello(self) -> Any:
        return self.client.json("GET", HELLO_PATH)

    def hold(self, path: str, data: bytes) -> None:
        with self._sizes_lock:
            self._held[path] = data

    def held(self, path: str) -> bytes | None:
        with self._sizes_lock:
            return self._held.get(path)

    def drop(self, path: str) -> bytes | None:
        with self._sizes_lock:
            self._mtimes.pop(path, None)
            return self._held.pop(path, None)

    def note_mtime(self, path: str, mtime: int) -> None:
        with self._sizes_lock:
            self._mtimes[path] = mtime

    def mtime_for(self, path: str) -> int | None:
        """The time to give the upload ``path`` when it is put in place (kept until
        then: a batch that fails is sent again)."""
        with self._sizes_lock:
            return self._mtimes.get(path)

    def note_size(self, path: str, size: int) -> None:
        with self._sizes_lock:
            self._sizes[path] = size

    def take_size(self, path: str) -> int | None:
        with self._sizes_lock:
            return self._sizes.pop(path, None)

    @staticmethod
    def _entry(doc: dict[str, Any]) -> dict[str, Any]:
        # mtime_ns: exact nanoseconds (see filesystem.mtime_ns_of), absent from older peers
        return {
            "name": "/" + doc["path"],
            "size": doc["size"],
            "type": doc["type"],
            "mtime_ns": doc.get("mtime"),
        }

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            doc = self.client.json("GET", f"{self.base}/stat", params={"path": _rel(path)})
        except NotFound:
            raise FileNotFoundError(path) from None
        return self._entry(doc)

    def exists(self, path: str, **kwargs: Any) -> bool:
        # fsspec's exists() hides every error; a refusal must be told, not read as absence
        try:
            self.info(path)
        except FileNotFoundError:
            return False
        return True

    def isdir(self, path: str) -> bool:
        try:
            return bool(self.info(path)["type"] == "directory")
        except FileNotFoundError:
            return False

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        try:
            docs = self.client.json("GET", f"{self.base}/list", params={"path": _rel(path)})
        except NotFound:
            raise FileNotFoundError(path) from None
        entries = [self._entry(d) for d in docs["entries"]]
        return entries if detail else [e["name"] for e in entries]

    def find(
        self,
        path: str,
        maxdepth: int | None = None,
        withdirs: bool = False,
        detail: bool = False,
        **kwargs: Any,
    ) -> Any:
        try:
            docs = self.client.json(
                "GET", f"{self.base}/list", params={"path": _rel(path), "recursive": "true"}
            )
        except NotFound:
            return {} if detail else []
        found = {
            e["name"]: e
            for e in map(self._entry, docs["entries"])
            if withdirs or e["type"] != "directory"
        }
        return found if detail else sorted(found)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if mode == "rb":
            return _Reader(self, path)
        if mode == "wb":
            return _Writer(self, path)
        if mode == "ab":
            return _Writer(self, path, self.upload_size(path))
        raise ValueError(f"mode {mode!r} is not supported")

    def upload_size(self, path: str) -> int:
        return int(
            self.client.json("GET", f"{self.base}/uploads", params={"path": _rel(path)})["size"]
        )

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        self.client.request("POST", f"{self.base}/folders", params={"path": _rel(path)})

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        self.mkdir(path)

    def rm_file(self, path: str) -> None:
        try:
            self.client.request("DELETE", f"{self.base}/files", params={"path": _rel(path)})
        except NotFound:
            raise FileNotFoundError(path) from None

    def _rm(self, path: str) -> None:
        self.rm_file(path)

    def rmdir(self, path: str) -> None:
        self.rm_file(path)

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        for p in [path] if isinstance(path, str) else path:
            self.rm_file(p)

    def _times(self, mtimes: list[int | None]) -> list[int | None]:
        """``mtimes`` as they may be sent: all None unless the peer takes ``mtime`` (a
        peer of the version before refuses the field: its copies get the time of the
        copy, as they always did there). Asks the peer only if a time is to be sent."""
        if any(m is not None for m in mtimes) and not self.features.accepts(MTIME):
            return [None] * len(mtimes)
        return mtimes

    def commit(self, upload: str, path: str, size: int | None, durable: bool) -> None:
        # before anything is dropped: a hello that fails leaves the upload as it was
        (mtime,) = self._times([self.mtime_for(upload)])
        data = self.drop(upload)
        if data is not None:  # a small file held back: write, sync and rename in one go
            params: dict[str, Any] = {
                "path": _rel(upload),
                "offset": 0,
                "commit": _rel(path),
                "durable": str(durable).lower(),
            }
            if mtime is not None:
                params["mtime"] = mtime
            self.client.request("PUT", f"{self.base}/uploads", params=params, **send_body([data]))
            return
        doc: dict[str, Any] = {
            "upload": _rel(upload),
            "path": _rel(path),
            "size": size,
            "durable": durable,
        }
        if mtime is not None:  # only when known and taken (absent: the peer sets no time)
            doc["mtime"] = mtime
        self.client.request("POST", f"{self.base}/commit", json=doc)

    def put_batch(self, items: list[tuple[str, str, int]]) -> None:
        """Put a group of uploads in place in one request: the small ones held back are
        sent in it; the peer writes them, syncs the group once, checks every size and
        renames each into place (see ``batch_parts``)."""
        files: list[dict[str, Any]] = []
        blobs = []
        mtimes = self._times([self.mtime_for(upload) for upload, _, _ in items])
        for (upload, path, size), mtime in zip(items, mtimes, strict=True):
            data = self.held(upload)
            doc = {
                "upload": _rel(upload),
                "path": _rel(path),
                "size": size,
                "data": data is not None,
            }
            if mtime is not None:
                doc["mtime"] = mtime
            files.append(doc)
            if data is not None:
                blobs.append(data)
        body = send_body(batch_parts(files, blobs))
        body["headers"]["Content-Type"] = BATCH_TYPE
        self.client.request("POST", f"{self.base}/uploads/batch", **body)
        for upload, _, _ in items:
            self.drop(upload)

    def sync(self, uploads: list[str]) -> None:
        self.client.request(
            "POST", f"{self.base}/uploads/sync", json={"uploads": [_rel(u) for u in uploads]}
        )

    def mv(self, path1: str, path2: str, **kwargs: Any) -> None:
        self.commit(path1, path2, None, True)


class PeerEndpointFS(EndpointFS):
    """An endpoint on another instance; transfers read and write it like any other."""

    resumable = True
    keeps_mtime = True
    # Small files are held back and put in place in groups, one request per group.
    group_sync = True
    batch_put = True
    # The peer creates an upload's folder and its final folder itself (PUT /uploads,
    # POST /uploads/batch, POST /commit): no POST /folders per folder first.
    creates_parents = True

    def __init__(self, name: str, fs: PeerFileSystem, root: str, options: dict[str, Any]) -> None:
        super().__init__(name, fs, root, options)
        self.peer: PeerFileSystem = fs
        self._synced: set[str] = set()
        self._lock = threading.Lock()

    @property
    def storage_id(self) -> str:
        return f"dataferry://{self.peer.site}/{self.peer.endpoint}"

    def open_read(self, full: str, size: int | None = None) -> Any:
        return _Reader(self.peer, full)

    def open_read_at(self, full: str, offset: int) -> Any:
        """Read from byte ``offset`` on (a ranged ``GET``): byte-level resume."""
        reader = _Reader(self.peer, full)
        reader.seek(offset)
        return reader

    def open_write(self, full: str) -> Any:
        return _Writer(self.peer, full)

    def open_append(self, full: str) -> Any:
        """Continue an interrupted upload from the size the peer holds."""
        return _Writer(self.peer, full, self.peer.upload_size(full))

    def set_mtime(self, fobj: Any, full: str, mtime_ns: int) -> None:
        # Sent with the request that puts the upload in place (commit, PUT with commit,
        # batch header): the peer sets it before its sync, no request of its own.
        self.peer.note_mtime(full, mtime_ns)

    def make_durable(self, fobj: Any) -> None:
        # Send what is buffered; the commit makes it durable before the rename. A small
        # file is held back and sent, synced and renamed by the commit itself.
        if fobj.sent_any:
            fobj.flush()

    def make_durable_many(self, fulls: list[str]) -> None:
        # Files held back are not on the peer yet: their commit sends and syncs them.
        sent = [f for f in fulls if self.peer.held(f) is None]
        if sent:
            self.peer.sync(sent)
        with self._lock:
            self._synced.update(sent)

    def put_in_place_many(self, items: list[tuple[str, str, int]]) -> None:
        self.peer.put_batch(items)

    def size(self, full: str) -> int:
        held = self.peer.held(full)
        if held is not None:
            return len(held)
        known = self.peer.take_size(full)
        return known if known is not None else int(self.peer.size(full))

    def exists(self, full: str) -> bool:
        return self.peer.held(full) is not None or bool(self.peer.exists(full))

    def info_or_none(self, full: str) -> dict[str, Any] | None:
        held = self.peer.held(full)
        if held is not None:  # a small file not yet sent: only this side knows it
            return {"name": full, "size": len(held), "type": "file"}
        try:
            return dict(self.peer.info(full))
        except FileNotFoundError:
            return None

    def rename(self, src: str, dst: str) -> None:
        with self._lock:
            synced = src in self._synced
            self._synced.discard(src)
        self.peer.commit(src, dst, None, durable=not synced)

    def remove(self, full: str) -> None:
        if self.peer.drop(full) is None:
            self.peer.rm_file(full)

    def makedirs(self, full: str) -> None:
        self.peer.mkdir(full)

    def close(self) -> None:
        self.peer.client.close()


def client_for(site: str) -> PeerClient:
    if _config is None:
        raise PermanentError("dataferry:// endpoints need the datasets capability (not loaded)")
    access = _config.resolve(site)
    return PeerClient(access, _config.my_site, verify=_config.verify, timeout=_config.timeout)


# Only the common options; a peer is reached with its site's token, not a secret.
OPTIONS: dict[str, Check] = {}
SECRETS: frozenset[str] = frozenset()


def check(url: SplitResult, options: dict[str, Any]) -> None:
    _split(url)


def open_peer(
    name: str, site: str, endpoint: str, root: str, options: dict[str, Any]
) -> EndpointFS:
    fs = PeerFileSystem(site, endpoint, client_for(site))
    return PeerEndpointFS(name, fs, "/" + root, options)


def open_fs(
    name: str, url: SplitResult, options: dict[str, Any], secrets: dict[str, str]
) -> EndpointFS:
    site, endpoint, root = _split(url)
    return open_peer(name, site, endpoint, root, options)
