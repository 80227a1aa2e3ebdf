"""Removing a table's deleted rows once every sink reading the table is done with them.

Two sinks may read one table, each with its own ``last_sync`` column. Each records
its own outcome for a row's deletion in its outbox: delivered (the partner accepted
that version) or dropped (it never sent the row, so no request was needed). The row
is removed only once every sink reading the table has an outcome for the same
deletion version; until then the row stays, so a paused, failing or idle sink still
sends it later, and a sink that has its outcome does not send it again (its outbox
knows that version). A sink whose row filter (``where``) does not select the row will
never read it, so it holds nothing.

Crash safety: outcomes are committed in dataferry's database before the row is
removed, and outcomes are forgotten only for rows gone from the table. A crash in
between leaves the row to the next sweep (any poll of a sink reading the table):
never lost, never sent twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dataferry.sinks.sources.table import TableSource
from dataferry.sinks.store import SinkStore

_CHUNK = 500


def sweep(
    store: SinkStore,
    source: TableSource,
    readers: Mapping[int, str],
    keys: Iterable[str] | None = None,
) -> int:
    """Remove the rows (of ``keys``, or all) whose deletion every sink of ``readers``
    (sink id -> its row filter, "" for none) has an outcome for; returns how many
    deletions were settled. TransientError if the table cannot be read or written."""
    if not readers:
        return 0
    marks: dict[tuple[str, str], dict[int, Any]] = {}  # (key, version) -> {sink: mark}
    for o in store.deletion_outcomes(readers, keys):
        marks.setdefault((o.key, o.version), {})[o.sink_id] = o.mark
    ready: list[tuple[str, str]] = []
    # Deletions some sinks have no outcome for, by those sinks: held unless each of
    # them has a row filter that does not select the row.
    unsettled: dict[tuple[str, str], list[int]] = {}
    for deletion, by_sink in marks.items():
        missing = [sink_id for sink_id in readers if sink_id not in by_sink]
        if not missing:
            ready.append(deletion)
        elif all(readers[sink_id] for sink_id in missing):
            unsettled[deletion] = missing
    if unsettled:
        holding: set[tuple[str, str]] = set()
        for where in {readers[i] for missing in unsettled.values() for i in missing}:
            asked = [
                d for d, missing in unsettled.items() if any(readers[i] == where for i in missing)
            ]
            for start in range(0, len(asked), _CHUNK):
                chunk = asked[start : start + _CHUNK]
                chosen = source.selected((_mark(d, marks[d]) for d in chunk), where)
                holding.update(d for d in chunk if d[0] in chosen)
        ready.extend(d for d in unsettled if d not in holding)
    for start in range(0, len(ready), _CHUNK):
        chunk = ready[start : start + _CHUNK]
        left = source.remove([_mark(d, marks[d]) for d in chunk])
        store.forget_deletions(readers, [d for d in chunk if d[0] not in left])
    return len(ready)


def _mark(deletion: tuple[str, str], by_sink: dict[int, Any]) -> dict[str, Any]:
    """A sink's mark of a deletion (every sink recorded the same version), the
    outbox key standing in for a raw key it lacks."""
    mark = next(iter(by_sink.values()))
    return {"k": deletion[0], **(mark if isinstance(mark, dict) else {})}
