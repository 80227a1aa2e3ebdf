"""Calling another dataferry instance: its URL, our site name and the shared token,
with driver errors turned into ours at this boundary."""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from dataferry.datasets.sites import SITE_HEADER, SiteAccess
from dataferry.errors import (
    Conflict,
    DataferryError,
    Forbidden,
    InvalidRequest,
    NotFound,
    PermanentError,
    TransientError,
)


class PeerError(DataferryError):
    """A peer answered with an error status; ``status_code`` is its HTTP status."""


def error_for(status: int, detail: str, site: str) -> DataferryError:
    message = f"site {site!r} answered: {detail}"
    if status == 404:
        return NotFound(message)
    if status in (401, 403):
        return Forbidden(message)
    if status == 409:
        return Conflict(message)
    if status in (400, 422):
        return InvalidRequest(message)
    if status >= 500 or status == 429:
        return TransientError(message)
    return PermanentError(message)


class PeerClient:
    """Thread-safe: one connection pool shared by a transfer's copy threads."""

    def __init__(
        self,
        access: SiteAccess,
        my_site: str,
        *,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 60.0,
        connections: int = 32,
    ) -> None:
        self.site = access.name
        self.url = access.url
        headers = {"Authorization": f"Bearer {access.token}", SITE_HEADER: my_site}
        self.http = httpx.Client(
            base_url=access.url,
            headers=headers,
            verify=verify,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    def close(self) -> None:
        self.http.close()

    def check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code < 400:
            return response
        try:
            response.read()
            detail = response.json().get("detail", response.text)
        except (ValueError, httpx.HTTPError):
            detail = response.text[:500] if response.is_closed else ""
        raise error_for(response.status_code, str(detail), self.site)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise TransientError(f"site {self.site!r} at {self.url}: {exc!r}") from exc
        return self.check(response)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise TransientError(f"site {self.site!r}: answer is not JSON") from exc

    def stream(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A response whose body is read as it arrives; the caller closes it."""
        try:
            request = self.http.build_request(method, path, **kwargs)
            response = self.http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise TransientError(f"site {self.site!r} at {self.url}: {exc!r}") from exc
        if response.status_code >= 400:
            try:
                self.check(response)
            finally:
                response.close()
        return response
