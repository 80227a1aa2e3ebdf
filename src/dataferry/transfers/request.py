"""A transfer request and its validated options (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from dataferry.errors import InvalidRequest


class Mode(StrEnum):
    COPY = "copy"
    MOVE = "move"
    SYNC = "sync"


class Checksum(StrEnum):
    SHA256 = "sha256"
    SHA1 = "sha1"
    MD5 = "md5"
    NONE = "none"


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


@dataclass(frozen=True, slots=True)
class TransferRequest:
    source: str  # "ENDPOINT:PATH"
    destination: str
    mode: Mode = Mode.COPY
    checksum: Checksum = Checksum.SHA256
    overwrite: Overwrite = Overwrite.ALWAYS

    @classmethod
    def build(
        cls,
        source: str,
        destination: str,
        mode: str = "copy",
        checksum: str = "sha256",
        overwrite: str | None = None,
    ) -> TransferRequest:
        m = _enum(Mode, mode, "mode")
        if overwrite is None:
            # sync means "only what differs"; copy and move replace what is there.
            overwrite = Overwrite.IF_DIFFERENT.value if m is Mode.SYNC else Overwrite.ALWAYS.value
        return cls(
            source=source,
            destination=destination,
            mode=m,
            checksum=_enum(Checksum, checksum, "checksum"),
            overwrite=_enum(Overwrite, overwrite, "overwrite"),
        )

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TransferRequest:
        return cls.build(
            params["source"],
            params["destination"],
            params["mode"],
            params["checksum"],
            params["overwrite"],
        )

    def params(self) -> dict[str, Any]:
        return {k: str(v) for k, v in asdict(self).items()}
