"""A transfer request and its validated options (pure)."""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from dataferry.errors import InvalidRequest
from dataferry.text import cut
from dataferry.transfers.filters import PathFilter, check_patterns
from dataferry.transfers.limits import Limits


class Mode(StrEnum):
    COPY = "copy"
    MOVE = "move"
    SYNC = "sync"
    MIRROR = "mirror"  # sync, then remove what the source does not have
    CHECK = "check"  # compare source and destination, write nothing (rclone check)


class Checksum(StrEnum):
    SHA256 = "sha256"
    SHA1 = "sha1"
    MD5 = "md5"
    NONE = "none"


class Compare(StrEnum):
    """How ``if-different`` tells that a file at the destination is the same."""

    CHECKSUM = "checksum"  # same size, then the same checksum (reads both)
    SIZE_MTIME = "size-mtime"  # same size and modification time (reads neither)


class Overwrite(StrEnum):
    ALWAYS = "always"
    NEVER = "never"
    IF_DIFFERENT = "if-different"


def _enum(cls: type[StrEnum], value: str, field: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise InvalidRequest(f"{field} {value!r} is not one of: {allowed}") from None


_DIGEST_LENGTHS = {Checksum.SHA256: 64, Checksum.SHA1: 40, Checksum.MD5: 32}


def parse_expected_checksum(value: str) -> str:
    """``"sha256:<hex>"`` -> the same, lower-cased; "" stays ""."""
    if not value:
        return ""
    algo, sep, digest = value.strip().partition(":")
    allowed = ", ".join(a.value for a in _DIGEST_LENGTHS)
    if not sep:
        raise InvalidRequest(f"expected_checksum {value!r} must be ALGO:HEX, ALGO one of {allowed}")
    try:
        kind = Checksum(algo.lower())
    except ValueError:
        kind = Checksum.NONE
    if kind not in _DIGEST_LENGTHS:
        raise InvalidRequest(f"expected_checksum algorithm {algo!r} is not one of: {allowed}")
    digest = digest.lower()
    if len(digest) != _DIGEST_LENGTHS[kind] or any(c not in "0123456789abcdef" for c in digest):
        raise InvalidRequest(
            f"expected_checksum digest must be {_DIGEST_LENGTHS[kind]} hex digits for {kind.value}"
        )
    return f"{kind.value}:{digest}"


@dataclass(frozen=True, slots=True)
class TransferRequest:
    source: str  # "ENDPOINT:PATH"
    destination: str
    mode: Mode = Mode.COPY
    checksum: Checksum = Checksum.SHA256
    overwrite: Overwrite = Overwrite.ALWAYS
    #: ``algo:hexdigest`` the caller expects of a single-file source ("" = none given)
    expected_checksum: str = ""
    #: gitignore-style patterns choosing the files of a folder source (filters.py)
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    compare: Compare = Compare.CHECKSUM
    #: create the source's empty folders at the destination too (rclone's
    #: --create-empty-src-dirs); folders with files always come with them
    empty_folders: bool = False
    #: bytes and seconds choosing the files of a folder source (limits.py); None: no limit
    min_size: int | None = None
    max_size: int | None = None
    min_age: float | None = None
    max_age: float | None = None

    @property
    def filter(self) -> PathFilter:
        return PathFilter(self.include, self.exclude)

    @property
    def limits(self) -> Limits:
        return Limits(self.min_size, self.max_size, self.min_age, self.max_age)

    @classmethod
    def build(
        cls,
        source: str,
        destination: str,
        mode: str = "copy",
        checksum: str = "sha256",
        overwrite: str | None = None,
        expected_checksum: str | None = None,
        include: Any = None,
        exclude: Any = None,
        compare: str | None = None,
        empty_folders: Any = False,
        min_size: Any = None,
        max_size: Any = None,
        min_age: Any = None,
        max_age: Any = None,
    ) -> TransferRequest:
        m = _enum(Mode, mode, "mode")
        expected = parse_expected_checksum(expected_checksum or "")
        if expected:
            checksum = expected.partition(":")[0]  # hash with the algorithm it names
        if overwrite is None:
            # sync and mirror mean "only what differs"; copy and move replace what is there.
            same = m in (Mode.SYNC, Mode.MIRROR)
            overwrite = Overwrite.IF_DIFFERENT.value if same else Overwrite.ALWAYS.value
        if not isinstance(empty_folders, bool):
            given = cut(repr(empty_folders))
            raise InvalidRequest(f"empty_folders must be true or false, not {given}")
        limits = Limits.build(min_size, max_size, min_age, max_age)
        return cls(
            source=source,
            destination=destination,
            mode=m,
            checksum=_enum(Checksum, checksum, "checksum"),
            overwrite=_enum(Overwrite, overwrite, "overwrite"),
            expected_checksum=expected,
            include=check_patterns("include", include),
            exclude=check_patterns("exclude", exclude),
            compare=_enum(Compare, compare or Compare.CHECKSUM.value, "compare"),
            empty_folders=empty_folders,
            min_size=limits.min_size,
            max_size=limits.max_size,
            min_age=limits.min_age,
            max_age=limits.max_age,
        )

    @classmethod
    def from_document(cls, doc: Any) -> TransferRequest:
        """A request from a transfer's JSON body given as one value (a schedule's
        ``transfer`` over RPC): an object of the body's fields, checked as ``build``
        checks them; an unknown field or a location that is not text is refused."""
        if not isinstance(doc, dict):
            raise InvalidRequest(f"transfer must be an object of its fields, not {cut(repr(doc))}")
        fields = set(inspect.signature(cls.build).parameters) - {"cls"}
        unknown = sorted(str(k) for k in doc if k not in fields)
        if unknown:
            raise InvalidRequest(
                f"transfer has unknown field(s) {unknown}; known: {sorted(fields)}"
            )
        for key in ("source", "destination"):
            if not isinstance(doc.get(key), str):
                raise InvalidRequest(f"transfer {key} must be ENDPOINT:PATH text")
        return cls.build(**doc)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TransferRequest:
        return cls.build(
            params["source"],
            params["destination"],
            params["mode"],
            params["checksum"],
            params["overwrite"],
            params.get("expected_checksum", ""),
            params.get("include"),
            params.get("exclude"),
            params.get("compare"),  # absent from jobs submitted before it existed
            params.get("empty_folders", False),
            params.get("min_size"),
            params.get("max_size"),
            params.get("min_age"),
            params.get("max_age"),
        )

    def params(self) -> dict[str, Any]:
        # Patterns stay lists (the params column is JSON) and only when given; a switch
        # only when on (jobs submitted before it existed read as off); a limit (a
        # number) only when set.
        return {
            k: list(v)
            if isinstance(v, tuple)
            else v
            if isinstance(v, (bool, int, float))
            else str(v)
            for k, v in asdict(self).items()
            if v is not None and (v or not isinstance(v, (tuple, bool)))
        }
