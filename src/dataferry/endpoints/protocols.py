"""Protocol registry: URL scheme -> backend module, imported only when used.

A backend module provides ``OPTIONS`` (the options it reads, each with the check of
its value, see ``endpoints.options``), ``SECRETS`` (the names of the secrets it
reads), ``check(url, options)`` (static validation when an endpoint is registered)
and ``open_fs(name, url, options, secrets)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Any
from urllib.parse import SplitResult, urlsplit

from dataferry.endpoints.filesystem import EndpointFS
from dataferry.endpoints.options import check_options, check_secret_names
from dataferry.errors import InvalidRequest


@dataclass(frozen=True)
class Protocol:
    module: str
    install_hint: str = ""


_PROTOCOLS = {
    "file": Protocol("dataferry.endpoints.backends.local"),
    "sftp": Protocol("dataferry.endpoints.backends.sftp", "pip install sshfs"),
    "s3": Protocol("dataferry.endpoints.backends.s3", "pip install s3fs"),
    "http": Protocol("dataferry.endpoints.backends.http", "pip install aiohttp"),
    "https": Protocol("dataferry.endpoints.backends.http", "pip install aiohttp"),
    "dataferry": Protocol("dataferry.datasets.peerfs"),
}
PROTOCOLS = MappingProxyType(_PROTOCOLS)


def parse_url(url: str) -> SplitResult:
    """Split an endpoint URL; a bare absolute path means ``file://``."""
    if url.startswith("/"):
        url = "file://" + url
    parts = urlsplit(url)
    if parts.scheme not in PROTOCOLS:
        known = ", ".join(sorted(PROTOCOLS))
        raise InvalidRequest(f"unknown URL scheme {parts.scheme!r}; known: {known}")
    return parts


def _backend(scheme: str) -> ModuleType:
    proto = PROTOCOLS[scheme]
    try:
        return importlib.import_module(proto.module)
    except ImportError as exc:
        hint = f" ({proto.install_hint})" if proto.install_hint else ""
        raise InvalidRequest(f"protocol {scheme!r} is not available: {exc}{hint}") from exc


def check(url: str, options: dict[str, Any], secret_names: Iterable[str] = ()) -> str:
    """Validate an endpoint URL, its options and the names of its secrets; returns the
    URL in canonical form."""
    parts = parse_url(url)
    backend = _backend(parts.scheme)
    check_options(parts.scheme, options, backend.OPTIONS)
    check_secret_names(parts.scheme, secret_names, backend.SECRETS)
    backend.check(parts, options)
    return parts.geturl()


def open_fs(name: str, url: str, options: dict[str, Any], secrets: dict[str, str]) -> EndpointFS:
    parts = parse_url(url)
    fs: EndpointFS = _backend(parts.scheme).open_fs(name, parts, options, secrets)
    return fs
