"""Text that is not Unicode: the lone surrogates JSON can carry.

JSON may spell a UTF-16 surrogate on its own (``"\\ud800"``) and Python's parser
reads it into a ``str``, but no UTF-8 text holds one: a value keeping it cannot be
written to a database, a file name, a log or an answer. Every value that comes in
as JSON is held to this before anything is stored.
"""

from __future__ import annotations

import re
from typing import Any

from dataferry.errors import InvalidRequest

_SURROGATE = re.compile("[\ud800-\udfff]")
# The escape of a surrogate in JSON text (or a false alarm such as "\\ud800", an
# escaped backslash before "ud800": the value decides).
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def lone_surrogate(value: Any) -> str | None:
    """The first string (or object key) in ``value`` holding a lone surrogate, or
    None. Walked without recursion, so any depth is fine."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                return item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def lone_surrogate_in(text: bytes, value: Any) -> str | None:
    """:func:`lone_surrogate` of ``value``, parsed from the JSON ``text``: walked only
    when the text spells a surrogate escape (a regular-expression scan, far cheaper
    than the walk), since without one no string in it can hold a surrogate."""
    return lone_surrogate(value) if SURROGATE_ESCAPE.search(text) else None


def cut(text: str, limit: int = 40) -> str:
    """At most ``limit`` characters of a value a caller sent, for an error message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def has_control_character(value: str) -> bool:
    """Whether ``value`` holds an ASCII control character (NUL, a newline, DEL ...)."""
    return any(ord(c) < 32 or c == "\x7f" for c in value)


def undecodable(name: str) -> bool:
    """Whether a name read from the file system held bytes that are not UTF-8:
    Python hands those over as lone surrogates (PEP 383), which no database,
    JSON answer or peer can carry."""
    return not name.isascii() and _SURROGATE.search(name) is not None


def check_file_name(rel: str, endpoint: str) -> None:
    """Refuse a path found on ``endpoint`` whose name is not UTF-8 (see
    :func:`undecodable`), naming it escaped."""
    if undecodable(rel):
        raise InvalidRequest(
            f"{rel!r} on endpoint {endpoint!r} has a name that is not valid UTF-8 "
            "(names are kept and sent as UTF-8 text): rename it"
        )


def check_unicode(value: Any, what: str) -> None:
    """Refuse ``value`` if a string in it is not Unicode text."""
    bad = lone_surrogate(value)
    if bad is not None:
        # repr() writes the surrogate escaped, so the message itself is Unicode text
        raise InvalidRequest(
            f"{what} holds {bad[:60]!r}: a lone surrogate (\\ud800-\\udfff) is not Unicode text"
        )
