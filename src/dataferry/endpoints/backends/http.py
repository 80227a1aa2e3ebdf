"""``http(s)://host/path`` endpoints: sources only.

Listing and sizes go through fsspec's HTTP filesystem (a URL is one file; no
folder crawling); the bytes are streamed with httpx, and a resumed download asks
for the rest with ``Range: bytes=N-``. A server that ignores the range (answers
200 instead of 206) still works: the bytes before N are read and dropped.

Secrets: ``token`` (sent as ``Authorization: Bearer``), or ``username`` and
``password`` (HTTP Basic). Option: ``timeout`` (seconds, default 60).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import SplitResult

import httpx

from dataferry.endpoints.filesystem import EndpointFS
from dataferry.endpoints.options import Check, seconds
from dataferry.errors import (
    DataferryError,
    Forbidden,
    InvalidRequest,
    PermanentError,
    TransientError,
)

_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}
OPTIONS: dict[str, Check] = {"timeout": seconds}
SECRETS = frozenset({"token", "username", "password"})


def check(url: SplitResult, options: dict[str, Any]) -> None:
    if not url.hostname:
        raise InvalidRequest(f"{url.scheme} URL needs a host: {url.scheme}://host/path")
    if url.username or url.password:
        raise InvalidRequest("put credentials in secrets (username, password or token)")
    try:
        url.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise InvalidRequest(f"bad {url.scheme} endpoint: {exc}") from None


def status_error(status: int, what: str) -> DataferryError:
    """The error for an HTTP status that is not a success."""
    if status in (404, 410):
        return PermanentError(f"{what}: not found (HTTP {status})")
    if status in (401, 403):
        return PermanentError(f"{what}: access refused (HTTP {status}); check the credentials")
    if status in _TRANSIENT_STATUS:
        return TransientError(f"{what}: server busy or failing (HTTP {status})")
    return PermanentError(f"{what}: HTTP {status}")


def _classify(name: str, exc: BaseException, what: str) -> DataferryError | None:
    where = f"{what} on endpoint {name!r}"
    if isinstance(exc, httpx.HTTPStatusError):
        return status_error(exc.response.status_code, where)
    if isinstance(exc, (httpx.TimeoutException, httpx.TransportError)):
        return TransientError(f"{where}: {type(exc).__name__}")
    status = getattr(exc, "status", None)  # aiohttp.ClientResponseError
    if isinstance(status, int) and type(exc).__module__.startswith("aiohttp"):
        return status_error(status, where)
    if type(exc).__module__.startswith("aiohttp"):
        return TransientError(f"{where}: {type(exc).__name__}")
    return None


def _fsspec_class() -> type:
    from fsspec.implementations.http import HTTPFileSystem

    class URLFiles(HTTPFileSystem):  # type: ignore[misc]
        """A URL names one file: never fetch a page to look for links."""

        async def _isdir(self, path: str) -> bool:
            return False

        async def _exists(self, path: str, **kwargs: Any) -> bool:
            try:
                await self._info(path, **kwargs)
            except FileNotFoundError:
                return False
            return True

        async def _info(self, url: str, **kwargs: Any) -> dict[str, Any]:
            session = await self.set_session()
            kw = {**self.kwargs, **kwargs}
            async with session.head(self.encode_url(url), allow_redirects=True, **kw) as r:
                if r.status in (404, 410):
                    raise FileNotFoundError(url)
                if r.status >= 400:
                    r.raise_for_status()
            info: dict[str, Any] = await super()._info(url, **kwargs)
            return info

    return URLFiles


class _Download:
    """A streamed GET as a read-only file object."""

    def __init__(
        self, client: httpx.Client, url: str, offset: int, what: str, end: int | None = None
    ) -> None:
        ranged = offset or end is not None
        headers = {"Range": f"bytes={offset}-{'' if end is None else end}"} if ranged else {}
        self._cm = client.stream("GET", url, headers=headers)
        self.response = self._cm.__enter__()
        try:
            if self.response.status_code >= 400:
                raise status_error(self.response.status_code, what)
            self._chunks = self.response.iter_raw(256 * 1024)
            self._buf = b""
            skip = offset if offset and self.response.status_code != 206 else 0
            while skip:  # the server ignored the range: drop what we have already
                block = self.read(min(skip, 1024 * 1024))
                if not block:
                    break
                skip -= len(block)
        except BaseException:
            self.close()
            raise

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (fewer when that is what has arrived); b"" at the end."""
        if n < 0:
            out = self._buf + b"".join(self._chunks)
            self._buf = b""
            return out
        if not self._buf:
            self._buf = next(self._chunks, b"")
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def close(self) -> None:
        self._cm.__exit__(None, None, None)

    def __enter__(self) -> _Download:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HTTPEndpointFS(EndpointFS):
    resumable = True  # as a source: Range requests

    def __init__(
        self, name: str, fs: Any, root: str, options: dict[str, Any], client: httpx.Client
    ) -> None:
        super().__init__(name, fs, root, options)
        self.client = client

    @property
    def storage_id(self) -> str:
        return self.root

    def full(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def check_writable(self, rel: str) -> None:
        raise Forbidden(f"endpoint {self.name!r} is an HTTP source; it cannot be written to")

    def open_read(self, full: str, size: int | None = None) -> Any:
        return _Download(self.client, full, 0, f"reading {full} on endpoint {self.name!r}")

    def open_read_at(self, full: str, offset: int) -> Any:
        return _Download(self.client, full, offset, f"reading {full} on endpoint {self.name!r}")

    def read_range(self, full: str, offset: int, length: int) -> bytes:
        what = f"reading {full} on endpoint {self.name!r}"
        with _Download(self.client, full, offset, what, end=offset + length - 1) as f:
            out = bytearray()
            while len(out) < length and (block := f.read(length - len(out))):
                out += block
            return bytes(out)

    def classify(self, exc: BaseException, what: str) -> DataferryError | None:
        return _classify(self.name, exc, what)

    def close(self) -> None:
        self.client.close()


def open_fs(
    name: str, url: SplitResult, options: dict[str, Any], secrets: dict[str, str]
) -> EndpointFS:
    headers: dict[str, str] = {}
    if secrets.get("token"):
        headers["Authorization"] = f"Bearer {secrets['token']}"
    elif secrets.get("username"):
        pair = f"{secrets['username']}:{secrets.get('password', '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    timeout = float(options.get("timeout", 60))
    fs = _fsspec_class()(
        skip_instance_cache=True, headers=headers, client_kwargs={"trust_env": False}
    )
    client = httpx.Client(
        headers=headers,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 15)),
        follow_redirects=True,
        trust_env=False,
    )
    root = url.geturl().rstrip("/")
    return HTTPEndpointFS(name, fs, root, options, client)
