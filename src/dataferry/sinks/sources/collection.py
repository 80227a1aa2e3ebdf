"""A dataferry collection as a sink source: every put, edit and delete (local or
replicated from a peer) is a change to deliver.

Reads the collection's change feed from the sink's cursor; the feed lists each
record once at its latest change, so changes are coalesced at the source too. The
cursor moves in the same transaction that records the changes in the outbox, so a
crash never skips a change. Tombstones stay in the collection (replication needs
them): a delivered deletion changes nothing at the source.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from dataferry.errors import InvalidRequest, NotFound
from dataferry.records import hlc
from dataferry.sinks.model import Claimed, SourceChange

if TYPE_CHECKING:
    from dataferry.records.service import RecordService

PAGE = 1000


class CollectionSource:
    def __init__(self, records: RecordService, name: str) -> None:
        self.records = records
        self.name = name
        self.label = f"collection:{name}"

    def check(self) -> None:
        try:
            self.records.collection(self.name)
        except NotFound:
            raise InvalidRequest(
                f"collection {self.name!r} does not exist (create it first: "
                f"dataferry records put {self.name} ...)"
            ) from None

    def scan(self, cursor: int) -> Iterator[tuple[list[SourceChange], int | None]]:
        since = cursor
        while True:
            page = self.records.changes(self.name, since=since, limit=PAGE)
            changes = [
                SourceChange(
                    key=r.uuid,
                    status="deleted" if r.deleted else "modified",
                    version=str(r.seq),
                    changed=hlc.to_datetime(r.hlc).isoformat(),
                    data=dict(r.data),
                    maybe_new=True,
                )
                for r in page.changes
            ]
            if changes or page.cursor != since:
                yield changes, page.cursor
            if not page.more:
                return
            since = page.cursor

    def delivered(self, changes: Sequence[Claimed]) -> None:
        """Nothing to record at the source: the outbox is the delivery state."""

    def close(self) -> None:
        pass
