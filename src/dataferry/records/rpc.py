"""The records and replication methods of the XML-RPC and JSON-RPC doors: thin
adapters over the records service and the replication protocol (version 2, and 1
for older peers), the same calls the REST routes make."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dataferry.app import Core


def register(core: Core) -> None:
    rpc: Any = getattr(core, "rpc", None)
    if rpc is None:  # no RPC doors in this build
        return

    def hello() -> dict[str, Any]:
        """This instance: protocol version, instance id, epoch, owner, collections."""
        return core.replication_protocol.hello()

    def pull(request: dict[str, Any]) -> Any:
        """The next batch of our change feed for a peer (same body as REST pull)."""
        return json.loads(core.replication_protocol.pull(request))

    def fetch(request: dict[str, Any]) -> Any:
        """Full states of the given records (same body as REST fetch)."""
        return json.loads(core.replication_protocol.fetch(request))

    def checkpoint(collection: str, source: str) -> dict[str, Any]:
        """How far we have applied SOURCE's feed of COLLECTION."""
        return core.replication_protocol.checkpoint(collection, source)

    def push(batch: dict[str, Any]) -> dict[str, Any]:
        """Apply a batch of the sender's feed and move our checkpoint of it."""
        return core.replication_protocol.push(batch)

    def sync(peer: str, collections: list[str] | None = None) -> dict[str, Any]:
        """Start a replicate job with PEER now; returns the job document."""
        return core.sync.submit(peer, collections).document()

    def put(collection: str, data: dict[str, Any], uuid: str = "") -> dict[str, Any]:
        """Create or replace a record (a new UUID when none is given)."""
        return core.records.put(collection, data, uuid or None).document()

    def get(collection: str, uuid: str, include_deleted: bool = False) -> dict[str, Any]:
        return core.records.get(collection, uuid, include_deleted).document()

    def delete(collection: str, uuid: str) -> dict[str, Any]:
        """Delete a record (a tombstone stays for replication and audit)."""
        return core.records.delete(collection, uuid).document()

    def changes(collection: str, since: int = 0, limit: int = 100) -> dict[str, Any]:
        """Changes after SINCE in commit order, tombstones included, with a cursor."""
        return core.records.changes(collection, since, limit).document()

    for name, fn in (
        ("replication.hello", hello),
        ("replication.pull", pull),
        ("replication.fetch", fetch),
        ("replication.checkpoint", checkpoint),
        ("replication.push", push),
        ("replication.sync", sync),
        ("records.put", put),
        ("records.get", get),
        ("records.delete", delete),
        ("records.changes", changes),
    ):
        rpc.register(name, fn, help=fn.__doc__ or "")
