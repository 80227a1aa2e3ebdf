"""Sync with a peer: pull its changes since our checkpoint, apply them in
batches (each batch and its checkpoint in one transaction), then push ours
from the checkpoint the peer holds. Interrupted anywhere, a sync resumes from
the last applied batch."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from dataferry.config import RecordSettings
from dataferry.errors import (
    Conflict,
    DataferryError,
    InvalidRequest,
    NotFound,
    PermanentError,
    TransientError,
)
from dataferry.records.peers import PeerService
from dataferry.records.service import ParsedBatch, RecordService, parse_batch, render_batch
from dataferry.records.transport import HttpTransport, Transport

log = logging.getLogger(__name__)

KIND = "replicate"
Progress = Callable[..., None]


def _quiet(**_: Any) -> None:
    return None


class Replicator:
    def __init__(
        self, records: RecordService, peers: PeerService, settings: RecordSettings
    ) -> None:
        self.records = records
        self.peers = peers
        self.settings = settings
        self.transport_for: Callable[[str, str], Transport] = HttpTransport

    def sync(
        self,
        peer: str,
        collections: list[str] | None = None,
        progress: Progress = _quiet,
    ) -> dict[str, Any]:
        """Sync with a registered peer; updates the peer table either way."""
        info = self.peers.get(peer)
        transport = self.transport_for(info.url, self.peers.token(peer))
        self.peers.attempted(peer)
        try:
            stats = self.sync_with(
                transport,
                collections or info.collections or None,
                progress,
                on_hello=lambda h: self.peers.identified(peer, h),
            )
        except DataferryError as exc:
            self.peers.failed(peer, exc.message)
            raise
        except Exception as exc:
            self.peers.failed(peer, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            transport.close()
        self.peers.succeeded(peer)
        return stats

    def sync_with(
        self,
        transport: Transport,
        collections: list[str] | None = None,
        progress: Progress = _quiet,
        on_hello: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Two-way sync over ``transport`` (any peer, registered or not)."""
        hello = transport.hello()
        if on_hello is not None:
            on_hello(hello)
        peer_id = str(hello.get("instance_id", ""))
        if not peer_id:
            raise PermanentError("the peer did not say its instance id")
        if peer_id == self.records.instance_id:
            raise PermanentError("the peer is this instance itself")
        names = collections or sorted(
            set(hello.get("collections", [])) | set(self.records.collection_names())
        )
        stats: dict[str, Any] = {
            "peer": peer_id,
            "pulled": 0,
            "pushed": 0,
            "changed": 0,
            "conflicts": 0,
            "collections": names,
        }
        for i, name in enumerate(names):
            progress(task=f"pull {name}", task_percent=100.0 * i / max(len(names), 1))
            self.pull(transport, name, peer_id, stats, progress)
            progress(task=f"push {name}")
            self.push(transport, name, peer_id, stats, progress)
        progress(task="done", task_percent=100.0, files_done=stats["pulled"] + stats["pushed"])
        return stats

    def pull(
        self,
        transport: Transport,
        collection: str,
        peer_id: str,
        stats: dict[str, Any],
        progress: Progress = _quiet,
    ) -> None:
        """Pull batches until the peer has nothing more. The next batch is fetched
        and checked (parsed) while the current one is written: the database work
        mostly runs outside the GIL, so the two overlap."""
        me = self.records.instance_id
        Fetched = tuple[dict[str, Any], ParsedBatch | None] | None

        def fetch(since: int) -> Fetched:
            try:
                batch = transport.pull(
                    collection, me, since, self.settings.batch_records, self.settings.batch_bytes
                )
            except NotFound:
                return None  # the peer does not have this collection (yet)
            changes = batch.get("changes") if isinstance(batch, dict) else None
            if not isinstance(changes, list):
                return batch, None  # malformed: ``apply`` says what is wrong
            try:
                return batch, parse_batch(changes)
            except InvalidRequest:
                return batch, None  # likewise, in the order of the checks

        since = self.records.checkpoint(collection, peer_id)["cursor"]
        fetched = fetch(since)
        with ThreadPoolExecutor(1, thread_name_prefix="prefetch") as pool:
            while fetched is not None:
                batch, parsed = fetched
                if batch.get("source") != peer_id:
                    raise PermanentError(
                        f"the peer answered as instance {batch.get('source')!r}, not {peer_id!r}"
                    )
                cursor = int(batch["cursor"])
                more = bool(batch.get("more")) and cursor > since
                upcoming: Future[Fetched] | None = pool.submit(fetch, cursor) if more else None
                try:
                    self._apply_batch(transport, collection, peer_id, batch, stats, parsed)
                except BaseException:
                    if upcoming is not None:
                        upcoming.cancel()
                        with contextlib.suppress(Exception):
                            upcoming.result()
                    raise
                progress(files_done=stats["pulled"] + stats["pushed"])
                if upcoming is None:
                    return
                since, fetched = cursor, upcoming.result()

    def _apply_batch(
        self,
        transport: Transport,
        collection: str,
        peer_id: str,
        batch: dict[str, Any],
        stats: dict[str, Any],
        parsed: ParsedBatch | None = None,
    ) -> None:
        changes: list[Any] | ParsedBatch = parsed if parsed is not None else batch["changes"]
        need = self.records.unmatched_echoes(collection, changes)
        if need:  # states we sent once but no longer hold (restored from backup)
            changes = list(batch["changes"]) + transport.fetch(collection, need)
        try:
            result = self.records.apply(
                collection,
                changes,
                source=peer_id,
                epoch=str(batch.get("epoch", "")),
                cursor_from=int(batch["since"]),
                cursor_to=int(batch["cursor"]),
            )
        except Conflict as exc:  # our checkpoint moved meanwhile (a concurrent sync)
            raise TransientError(exc.message) from exc
        if result.need:
            raise TransientError(f"{len(result.need)} states changed during the sync; retrying")
        stats["pulled"] += result.received
        stats["changed"] += result.changed
        stats["conflicts"] += result.conflicts

    def push(
        self,
        transport: Transport,
        collection: str,
        peer_id: str,
        stats: dict[str, Any],
        progress: Progress = _quiet,
    ) -> None:
        if not self.records.has_collection(collection):
            return  # we do not have it: nothing to push
        while True:
            since = int(transport.checkpoint(collection, self.records.instance_id)["cursor"])
            header, changes = self.records.feed_batch(
                collection,
                since,
                requester=peer_id,
                limit=self.settings.batch_records,
                max_bytes=self.settings.batch_bytes,
            )
            if header["cursor"] <= since:
                return
            try:
                result = transport.push(collection, render_batch(header, changes))
                if result.get("need"):  # the peer lost states it once sent us: send them
                    full = self.records.states(collection, list(result["need"]))
                    result = transport.push(collection, render_batch(header, changes + full))
                    if result.get("need"):
                        raise TransientError("the peer still lacks states; retrying")
            except Conflict as exc:
                raise TransientError(exc.message) from exc
            stats["pushed"] += int(header["states"])
            stats["changed"] += int(result.get("changed", 0))
            progress(files_done=stats["pulled"] + stats["pushed"])
            if not header["more"]:
                return
