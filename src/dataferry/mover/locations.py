"""Where a move reads from and writes to: ``ENDPOINT:PATH`` or a URL (pure checks
here; opening happens in the job)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from dataferry.endpoints import protocols
from dataferry.endpoints.filesystem import EndpointFS
from dataferry.endpoints.paths import clean_relative, name, split_location
from dataferry.endpoints.service import EndpointService
from dataferry.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class Location:
    text: str
    endpoint: str = ""  # a registered endpoint, or "" for a URL
    path: str = ""  # relative to the endpoint (or, for a URL, its last segment)

    @property
    def is_url(self) -> bool:
        return not self.endpoint


def parse(text: str, role: str) -> Location:
    """Check a location's form; raises InvalidRequest with the reason."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest(f"missing {role}")
    text = text.strip()
    if "://" not in text:
        endpoint, path = split_location(text)
        return Location(text, endpoint, path)
    parts = urlsplit(text)
    if parts.scheme not in protocols.PROTOCOLS:
        raise InvalidRequest(f"unknown URL scheme {parts.scheme!r} in {role} {text!r}")
    if parts.scheme == "file":
        raise InvalidRequest(f"file URLs are not accepted as {role}; register an endpoint")
    if not parts.hostname:
        raise InvalidRequest(f"missing host in {role} URL {text!r}")
    return Location(text)


def check_known(loc: Location, endpoints: EndpointService, role: str) -> None:
    if loc.endpoint:
        try:
            endpoints.get(loc.endpoint)
        except Exception as exc:
            raise InvalidRequest(f"unknown {role} endpoint {loc.endpoint!r}") from exc


def open_location(loc: Location, endpoints: EndpointService) -> tuple[EndpointFS, str]:
    """The filesystem and the path on it. A URL opens an anonymous endpoint on its
    folder, with its last segment (and query) as the path."""
    if loc.endpoint:
        return endpoints.open(loc.endpoint), loc.path
    parts = urlsplit(loc.text)
    folder, _, last = parts.path.rpartition("/")
    root = urlunsplit((parts.scheme, parts.netloc, folder, "", ""))
    fs = protocols.open_fs("url", root, {}, {})
    rel = last + (f"?{parts.query}" if parts.query else "")
    return fs, rel


def base_name(loc: Location) -> str:
    """The name a source gets at the destination."""
    if loc.endpoint:
        return name(loc.path) or loc.endpoint
    last = unquote(urlsplit(loc.text).path.rstrip("/").rpartition("/")[2])
    return clean_relative(last.replace("/", "_")) or "download"
