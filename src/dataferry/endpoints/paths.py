"""Path safety, pure: a user's path inside an endpoint must stay inside its root."""

from __future__ import annotations

import posixpath

from dataferry.errors import InvalidRequest
from dataferry.text import has_control_character


def clean_relative(path: str) -> str:
    """Normalise a path relative to an endpoint root; refuse anything that could leave it.

    ``""``, ``"."`` and ``"./"`` mean the root itself and give ``""``.
    Refused: absolute paths, any ``..`` component, NUL and other control characters,
    backslashes (a Windows separator on one side is a traversal on the other).
    """
    if has_control_character(path):
        raise InvalidRequest(f"path {path!r} contains a control character")
    if "\\" in path:
        raise InvalidRequest(f"path {path!r} contains a backslash")
    if path.startswith("/"):
        raise InvalidRequest(
            f"path {path!r} is absolute; give it relative to the endpoint's root"
            " (e.g. 'run1/data'; '' or '.' is the root itself)"
        )
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidRequest(f"path {path!r} escapes the endpoint's root ('..')")
    return "/".join(parts)


def join(*parts: str) -> str:
    """Join clean relative parts (empty parts mean the root)."""
    return "/".join(p for p in parts if p)


def parent(path: str) -> str:
    return posixpath.dirname(path)


def name(path: str) -> str:
    return posixpath.basename(path)


def is_within(root: str, candidate: str) -> bool:
    """True if the absolute ``candidate`` is ``root`` or below it (both already resolved)."""
    root = root.rstrip("/") or "/"
    return candidate == root or candidate.startswith(root if root == "/" else root + "/")


def split_location(location: str) -> tuple[str, str]:
    """``"ENDPOINT:PATH"`` -> ``("ENDPOINT", "PATH")`` with the path cleaned."""
    endpoint, sep, path = location.partition(":")
    if not sep or not endpoint:
        raise InvalidRequest(f"location {location!r} is not of the form ENDPOINT:PATH")
    return endpoint, clean_relative(path)
