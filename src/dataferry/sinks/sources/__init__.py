"""Where changes come from: one module per kind of source."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from dataferry.sinks.model import Claimed, SourceChange


class Source(Protocol):
    """A source of changes for one sink."""

    label: str

    def check(self) -> None:
        """Raise :class:`~dataferry.errors.InvalidRequest` naming what is missing."""

    def scan(self, cursor: int) -> Iterator[tuple[list[SourceChange], int | None]]:
        """Changes not yet delivered, in batches, each with the feed cursor after it
        (``None`` for sources without a feed)."""

    def delivered(self, changes: Sequence[Claimed]) -> None:
        """The partner accepted ``changes``: record it at the source (if it keeps state)."""

    def close(self) -> None: ...
