"""How one instance talks to another: the replication protocol over HTTP.

The same four calls are served by ``api/rest/replication.py`` (and backed by
``RecordService``), so tests can also plug two services together directly."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from dataferry.errors import (
    Conflict,
    DataferryError,
    InvalidRequest,
    NotFound,
    PermanentError,
    TransientError,
    Unauthorized,
)
from dataferry.records import gcpause
from dataferry.records.model import dumps, loads
from dataferry.records.service import PROTOCOL, PROTOCOLS

PREFIX = "/api/v1/replication"


class Transport(Protocol):
    protocol: int  # the version spoken with this peer (set by ``hello``)

    def hello(self) -> dict[str, Any]: ...

    def pull(
        self, collection: str, requester: str, since: int, limit: int, max_bytes: int
    ) -> dict[str, Any]: ...

    def checkpoint(self, collection: str, source: str) -> dict[str, Any]: ...

    def fetch(self, collection: str, uuids: list[str]) -> list[dict[str, Any]]: ...

    def push(self, collection: str, body: bytes) -> dict[str, Any]: ...

    def close(self) -> None: ...


class HttpTransport:
    def __init__(self, url: str, token: str, timeout: float = 120.0) -> None:
        self.protocol = PROTOCOL
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            r = self._http.request(method, PREFIX + path, **kwargs)
        except httpx.HTTPError as exc:
            raise TransientError(f"peer {self.url} unreachable: {exc}") from exc
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text[:500]
            message = f"peer {self.url}: {detail} (HTTP {r.status_code})"
            error: type[DataferryError] = {
                401: Unauthorized,
                403: PermanentError,
                404: NotFound,
                409: Conflict,
                422: InvalidRequest,
            }.get(r.status_code, TransientError if r.status_code >= 500 else PermanentError)
            raise error(message)
        with gcpause.paused():  # a batch is a few MiB of small objects
            try:
                return loads(r.content, finite=True)
            except ValueError as exc:
                raise PermanentError(f"peer {self.url} answered what is not JSON: {exc}") from None

    def hello(self) -> dict[str, Any]:
        doc: dict[str, Any] = self._call("GET", "/hello")
        theirs = doc.get("protocol")
        if type(theirs) is not int or theirs < min(PROTOCOLS):
            raise PermanentError(
                f"peer {self.url} speaks replication protocol {theirs!r}; this instance "
                f"speaks {', '.join(map(str, PROTOCOLS))}"
            )
        # A newer peer serves older versions too: speak the highest both know.
        self.protocol = min(theirs, PROTOCOL)
        return doc

    def pull(
        self, collection: str, requester: str, since: int, limit: int, max_bytes: int
    ) -> dict[str, Any]:
        body = {
            "protocol": self.protocol,
            "collection": collection,
            "requester": requester,
            "since": since,
            "limit": limit,
            "max_bytes": max_bytes,
        }
        doc: dict[str, Any] = self._call(
            "POST", "/pull", content=dumps(body), headers={"Content-Type": "application/json"}
        )
        return doc

    def checkpoint(self, collection: str, source: str) -> dict[str, Any]:
        doc: dict[str, Any] = self._call(
            "GET", "/checkpoint", params={"collection": collection, "source": source}
        )
        return doc

    def fetch(self, collection: str, uuids: list[str]) -> list[dict[str, Any]]:
        body = {"protocol": self.protocol, "collection": collection, "uuids": uuids}
        doc = self._call(
            "POST", "/fetch", content=dumps(body), headers={"Content-Type": "application/json"}
        )
        changes: list[dict[str, Any]] = doc["changes"]
        return changes

    def push(self, collection: str, body: bytes) -> dict[str, Any]:
        doc: dict[str, Any] = self._call(
            "POST", "/push", content=body, headers={"Content-Type": "application/json"}
        )
        return doc
