"""The bundle metadata format (``metadata.txt``): parse and check it, pure.

A JSON list of objects, each with a ``destinationTable``:

- ``Transactions.submitter`` / ``Transactions.project`` / ``Transactions.instrument``
  with a ``value``; other ``Transactions.<field>`` entries are kept as key-values;
- ``TransactionKeyValue`` with ``key`` and ``value``;
- ``Files`` with ``name``, ``subdir`` (below ``data/``), ``size``, ``hashtype``,
  ``hashsum``, and optionally ``mimetype``, ``ctime``, ``mtime`` and (for ``/move``)
  ``source``.

Keys this format does not use (the Pacifica uploader sends ``metaID``,
``displayType`` and others) are ignored.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from dataferry.endpoints.filesystem import MAX_FILE_SIZE
from dataferry.endpoints.paths import clean_relative, join
from dataferry.errors import InvalidRequest
from dataferry.ingest.tasks import LOAD_METADATA, BundleError
from dataferry.text import has_control_character, lone_surrogate
from dataferry.transfers.plan import TMP_SUFFIX

METADATA_NAME = "metadata.txt"
DATA_DIR = "data"
TRANSACTION_FIELDS = ("submitter", "project", "instrument")
HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
_HEX = re.compile(r"^[0-9a-fA-F]+$")
# What the metadata tables hold (db/models/ingest.py; a unit test keeps them equal):
# checked here, before anything is archived, so every database refuses the same
# bundles (SQLite would store a longer value that PostgreSQL refuses).
MAX_FIELD_CHARS = 255  # submitter, project, instrument, key-value keys, mimetype
MAX_TIME_CHARS = 64  # ctime, mtime


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One ``Files`` entry; ``path`` is its place below ``data/`` (clean, relative)."""

    path: str
    name: str
    subdir: str
    size: int
    hashtype: str
    hashsum: str
    mimetype: str = "application/octet-stream"
    ctime: str = ""
    mtime: str = ""
    source: str = ""

    def document(self) -> dict[str, Any]:
        return {
            "destinationTable": "Files",
            "name": self.name,
            "subdir": self.subdir,
            "size": self.size,
            "hashtype": self.hashtype,
            "hashsum": self.hashsum,
            "mimetype": self.mimetype,
            "ctime": self.ctime,
            "mtime": self.mtime,
        }


@dataclass(frozen=True, slots=True)
class BundleMetadata:
    submitter: str | None = None
    project: str | None = None
    instrument: str | None = None
    key_values: tuple[tuple[str, str], ...] = ()
    files: tuple[FileEntry, ...] = ()
    raw: list[Any] = field(default_factory=list, compare=False)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def by_path(self) -> dict[str, FileEntry]:
        return {f.path: f for f in self.files}

    def field(self, name: str) -> str | None:
        """A ``Transactions.<field>`` value, or a key-value by key."""
        if name.startswith("Transactions."):
            attr = name.split(".", 1)[1]
            if attr in TRANSACTION_FIELDS:
                value: str | None = getattr(self, attr)
                return value
        for key, value in self.key_values:
            if key == name:
                return value
        return None


def _fail(message: str, source: str = METADATA_NAME) -> BundleError:
    return BundleError(LOAD_METADATA, f"{source}: {message}")


def check_value(
    value: Any, where: str, limit: int | None = None, source: str = METADATA_NAME
) -> str:
    """``value`` as the text a metadata column stores (at most ``limit`` characters),
    or a :class:`BundleError` naming ``source`` (the file) and ``where`` in it."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and not math.isfinite(value):
        raise _fail(f"{where}: {value} is not a number JSON allows", source)
    elif isinstance(value, (str, int, float)):
        text = str(value)
    else:
        raise _fail(
            f"{where}: value must be a string or a number, not {type(value).__name__}", source
        )
    if "\x00" in text:
        raise _fail(f"{where}: value {text[:60]!r} holds a NUL character", source)
    if limit is not None and len(text) > limit:
        raise _fail(f"{where}: value {text[:60]!r}... is longer than {limit} characters", source)
    return text


def check_key(key: Any, where: str, source: str = METADATA_NAME) -> str:
    """``key`` as a key-value's key (``where`` in ``source``: "" for none), or a
    :class:`BundleError`."""
    at = f"{where}: " if where else ""
    if not isinstance(key, str) or not key:
        raise _fail(f"{at}TransactionKeyValue needs a 'key'", source)
    if has_control_character(key):
        raise _fail(f"{at}key {key[:60]!r} holds a control character", source)
    if len(key) > MAX_FIELD_CHARS:
        raise _fail(f"{at}key {key[:60]!r}... is longer than {MAX_FIELD_CHARS} characters", source)
    return key


def check_unicode(doc: Any, source: str = METADATA_NAME) -> None:
    """Refuse ``doc`` if a string in it holds a lone surrogate."""
    bad = lone_surrogate(doc)
    if bad is not None:
        # repr() writes the surrogate escaped, so the message itself is Unicode text
        raise _fail(
            f"{bad[:60]!r} holds a lone surrogate (\\ud800-\\udfff): not Unicode text", source
        )


def data_path(subdir: str, name: str) -> str:
    """The clean path below ``data/`` of a file given as ``subdir`` + ``name``;
    a leading ``data/`` in ``subdir`` (as some uploaders send) is dropped."""
    parts = [p for p in subdir.split("/") if p not in ("", ".")]
    if parts and parts[0] == DATA_DIR:
        parts = parts[1:]
    return clean_relative(join("/".join(parts), name))


def _file(item: dict[str, Any], where: str, need_source: bool) -> FileEntry:
    name = item.get("name")
    if not isinstance(name, str) or not name or "/" in name:
        raise _fail(f"{where}: 'name' must be a file name without '/'")
    subdir = item.get("subdir") or ""
    if not isinstance(subdir, str):
        raise _fail(f"{where}: 'subdir' must be a string")
    if subdir.startswith("/") or "\\" in subdir:
        raise _fail(f"{where}: 'subdir' {subdir!r} is absolute; give it relative to data/")
    try:
        path = data_path(subdir, name)
    except InvalidRequest as exc:
        raise _fail(f"{where}: {exc.message}") from None
    if name.endswith(TMP_SUFFIX):
        raise _fail(f"{where}: names ending in {TMP_SUFFIX} are reserved for temporary files")
    size = item.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_FILE_SIZE:
        raise _fail(f"{where}: 'size' must be a whole number of bytes from 0 to 2**63-1")
    hashtype = str(item.get("hashtype") or "").lower()
    if hashtype not in HASH_LENGTHS:
        known = ", ".join(sorted(HASH_LENGTHS))
        raise _fail(f"{where}: 'hashtype' must be one of {known}, not {hashtype!r}")
    hashsum = item.get("hashsum")
    if (
        not isinstance(hashsum, str)
        or len(hashsum) != HASH_LENGTHS[hashtype]
        or not _HEX.fullmatch(hashsum)
    ):
        raise _fail(f"{where}: 'hashsum' must be the {hashtype} hex digest")
    source = item.get("source") or ""
    if not isinstance(source, str):
        raise _fail(f"{where}: 'source' must be a path")
    if need_source:
        if not source:
            raise _fail(f"{where}: 'source' (a path on the staging endpoint) is required")
        try:
            source = clean_relative(source)
        except InvalidRequest as exc:
            raise _fail(f"{where}: source: {exc.message}") from None
    mimetype = item.get("mimetype") or "application/octet-stream"
    return FileEntry(
        path=path,
        name=name,
        subdir=subdir,
        size=size,
        hashtype=hashtype,
        hashsum=hashsum.lower(),
        mimetype=check_value(mimetype, where, MAX_FIELD_CHARS),
        ctime=check_value(item.get("ctime") or "", where, MAX_TIME_CHARS),
        mtime=check_value(item.get("mtime") or "", where, MAX_TIME_CHARS),
        source=source,
    )


def parse_metadata(text: bytes | str, *, need_source: bool = False) -> BundleMetadata:
    """Parse ``metadata.txt``; :class:`BundleError` at ``load metadata`` if it is not valid."""
    try:
        doc = decode_json(text)
    except ValueError as exc:
        raise _fail(f"not valid JSON: {exc}") from None
    return check_metadata(doc, need_source=need_source)


def _not_json(name: str) -> Any:
    # Python's parser reads NaN and Infinity; JSON has no such numbers.
    raise ValueError(f"{name} is not a number JSON allows")


def decode_json(text: bytes | str) -> Any:
    """A metadata document's JSON; ValueError (UnicodeDecodeError among them) if it is
    not JSON, NaN and Infinity included, or nests too deeply for the parser."""
    try:
        return json.loads(text, parse_constant=_not_json)
    except RecursionError:
        raise ValueError("it nests too deeply to read") from None


def check_metadata(doc: Any, *, need_source: bool = False) -> BundleMetadata:
    """Check an already decoded metadata document."""
    if not isinstance(doc, list):
        raise _fail(f"must be a JSON list of objects, not {type(doc).__name__}")
    check_unicode(doc)
    fields: dict[str, str] = {}
    key_values: list[tuple[str, str]] = []
    files: list[FileEntry] = []
    seen: set[str] = set()
    for i, item in enumerate(doc):
        where = f"entry {i}"
        if not isinstance(item, dict):
            raise _fail(f"{where}: must be an object")
        table = item.get("destinationTable")
        if not isinstance(table, str) or not table:
            raise _fail(f"{where}: 'destinationTable' is missing")
        if table == "Files":
            entry = _file(item, where, need_source)
            if entry.path in seen:
                raise _fail(f"{where}: file data/{entry.path} is listed twice")
            seen.add(entry.path)
            files.append(entry)
        elif table == "TransactionKeyValue":
            key = check_key(item.get("key"), where)
            if "value" not in item or item["value"] is None:
                raise _fail(f"{where}: TransactionKeyValue {key!r} needs a 'value'")
            key_values.append((key, check_value(item["value"], where)))
        elif table.startswith("Transactions."):
            attr = table.split(".", 1)[1]
            if attr == "_id":
                continue  # the service assigns transaction ids
            if "value" not in item or item["value"] is None or item["value"] == "":
                raise _fail(f"{where}: {table} needs a 'value'")
            if attr in TRANSACTION_FIELDS:
                if attr in fields:
                    raise _fail(f"{where}: {table} is given twice")
                fields[attr] = check_value(item["value"], where, MAX_FIELD_CHARS)
            else:  # kept as a key-value named after the table
                key_values.append((check_key(table, where), check_value(item["value"], where)))
        else:
            raise _fail(f"{where}: unknown destinationTable {table!r}")
    return BundleMetadata(
        submitter=fields.get("submitter"),
        project=fields.get("project"),
        instrument=fields.get("instrument"),
        key_values=tuple(key_values),
        files=tuple(files),
        raw=doc,
    )
