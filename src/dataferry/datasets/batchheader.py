"""The files of a batch upload's header (``POST /uploads/batch``), checked whole, pure.

Each file is exactly ``{"upload": str, "path": str, "size": int, "data": bool}`` and
optionally ``"mtime": int`` (or null): JSON's own types, nothing coerced (a ``data``
of ``1``, ``"yes"`` or ``"false"`` is not a boolean), a size from 0 to the largest a
file can have, a modification time in whole nanoseconds since 1970 (not negative,
not a float nor NaN, at most ``MAX_MTIME_NS``), both names relative
to the endpoint's root and never given twice in one batch. The receiver checks all
of them before it writes a byte, so a bad file late in a header cannot leave the
files before it in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dataferry.endpoints.filesystem import MAX_FILE_SIZE, MAX_MTIME_NS
from dataferry.endpoints.paths import clean_relative
from dataferry.errors import InvalidRequest
from dataferry.text import cut

FIELDS = ("upload", "path", "size", "data")
OPTIONAL = ("mtime",)


@dataclass(frozen=True, slots=True)
class BatchFile:
    upload: str  # the temporary name, relative to the endpoint's root and cleaned
    path: str  # the final name, likewise
    size: int
    data: bool  # its bytes come in the body (else it was uploaded before)
    mtime: int | None = None  # set on the upload before it is synced (ns since 1970)


def batch_files(docs: Sequence[Any]) -> list[BatchFile]:
    """The header's files, each checked, or ``InvalidRequest`` naming the first bad one."""
    files = [_batch_file(i, doc) for i, doc in enumerate(docs)]
    seen: dict[str, int] = {}
    for i, f in enumerate(files):
        for name in (f.upload, f.path):
            if name in seen:
                raise InvalidRequest(
                    f"batch: file {i} names {name!r}, as file {seen[name]} does already"
                )
            seen[name] = i
    return files


def _batch_file(i: int, doc: Any) -> BatchFile:
    if not isinstance(doc, dict):
        raise InvalidRequest(f"batch: file {i} is not an object")
    where = f"batch: file {i}"
    if isinstance(doc.get("path"), str):
        where += f" ({_shown(doc['path'])})"
    unknown = sorted(str(k) for k in doc if k not in FIELDS and k not in OPTIONAL)
    if unknown:
        raise InvalidRequest(f"{where}: unknown field(s) {cut(', '.join(unknown))}")
    missing = [k for k in FIELDS if k not in doc]
    if missing:
        raise InvalidRequest(f"{where}: needs {', '.join(missing)}")
    upload, path, size, data = (doc[k] for k in FIELDS)
    for field, value in (("upload", upload), ("path", path)):
        if not isinstance(value, str):
            raise InvalidRequest(f"{where}: {field!r} must be a string")
    if type(size) is not int or not 0 <= size <= MAX_FILE_SIZE:
        raise InvalidRequest(
            f"{where}: 'size' must be a whole number of bytes, 0 to {MAX_FILE_SIZE}"
        )
    if type(data) is not bool:
        raise InvalidRequest(f"{where}: 'data' must be true or false, not {_shown(data)}")
    mtime = doc.get("mtime")
    if mtime is not None and (type(mtime) is not int or not 0 <= mtime <= MAX_MTIME_NS):
        raise InvalidRequest(
            f"{where}: 'mtime' must be whole nanoseconds since 1970, 0 to {MAX_MTIME_NS}, "
            f"not {_shown(mtime)}"
        )
    final = _clean(where, path)
    if not final:
        raise InvalidRequest(f"{where}: 'path' names the endpoint's root")
    return BatchFile(_clean(where, upload), final, size, data, mtime)


def _clean(where: str, name: str) -> str:
    try:
        return clean_relative(name)
    except InvalidRequest as exc:
        raise InvalidRequest(f"{where}: {exc.message}") from None


def _shown(value: Any) -> str:
    return cut(repr(value))
