"""Sync with a peer: pull its changes since our checkpoint, apply them in
batches (each batch and its checkpoint in one transaction), then push ours
from the checkpoint the peer holds. Interrupted anywhere, a sync resumes from
the last applied batch."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from dataferry.config import OWNER_MAX, RecordSettings
from dataferry.errors import (
    Conflict,
    DataferryError,
    InvalidRequest,
    NotFound,
    PermanentError,
    TransientError,
)
from dataferry.records.model import COLLECTION_NAME, MAX_ORIGIN, is_origin
from dataferry.records.peers import PeerService
from dataferry.records.service import (
    ParsedBatch,
    RecordService,
    combine_batches,
    parse_batch,
    render_batch,
)
from dataferry.records.transport import HttpTransport, Transport
from dataferry.text import cut

log = logging.getLogger(__name__)

KIND = "replicate"
Progress = Callable[..., None]

PREFETCH = 3  # batches fetched and parsed ahead of the one being written
GROUP_RECORDS = 10_000  # records at most in one transaction of waiting batches
_EMPTY = object()


@dataclass(slots=True)
class _Fetched:
    """A pulled batch and its changes checked (None: malformed, ``apply`` says why)."""

    batch: dict[str, Any]
    parsed: ParsedBatch | None

    def size(self) -> int:
        return len(self.parsed.incoming) + len(self.parsed.echoes) if self.parsed else 0


def _parsed(batch: Any) -> ParsedBatch | None:
    changes = batch.get("changes") if isinstance(batch, dict) else None
    if not isinstance(changes, list):
        return None
    try:
        return parse_batch(changes)
    except InvalidRequest:
        return None


def _quiet(**_: Any) -> None:
    return None


def check_hello(hello: dict[str, Any], who: str) -> None:
    """Refuse a hello whose epoch, owner or contact (stored, and printed by ``peer
    list``) is not printable text within its column's limit, or whose collections
    are not a list of collection names: a clear error naming ``who``."""
    for key, limit in (("epoch", MAX_ORIGIN), ("owner", OWNER_MAX), ("contact", OWNER_MAX)):
        value = hello.get(key, "")
        if not isinstance(value, str):
            raise PermanentError(f"{who} said hello with {key} {cut(repr(value))}: not a string")
        if not value.isprintable():  # control and format characters, lone surrogates
            raise PermanentError(f"{who} said hello with {key} {cut(value)!r}: not printable text")
        if len(value) > limit:
            raise PermanentError(
                f"{who} said hello with {key} {cut(value)!r}: longer than {limit} characters"
            )
    names = hello.get("collections", [])
    if not isinstance(names, list) or not all(
        isinstance(n, str) and COLLECTION_NAME.fullmatch(n) for n in names
    ):
        raise PermanentError(
            f"{who} said hello with collections {cut(repr(names))}: not a list of collection names"
        )


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
                who=f"peer {peer!r}",
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
        who: str = "the peer",
    ) -> dict[str, Any]:
        """Two-way sync over ``transport`` (any peer, registered or not); ``who``
        names the peer in errors."""
        hello = transport.hello()
        peer_id = hello.get("instance_id", "")
        if not peer_id:
            raise PermanentError("the peer did not say its instance id")
        if not is_origin(peer_id):  # the rule of a change's origin (records.model)
            raise PermanentError(
                f"the peer's instance id {peer_id!r:.80} is not one: "
                f"1-{MAX_ORIGIN} printable characters"
            )
        check_hello(hello, who)  # before anything of it is stored
        if on_hello is not None:
            on_hello(hello)
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
        """Pull batches until the peer has nothing more.

        A reader thread fetches and checks (parses) up to ``PREFETCH`` batches
        ahead while this thread writes: the database work runs mostly outside
        the GIL, so the two overlap. Batches already waiting when a write starts
        go into the same transaction (up to ``GROUP_RECORDS`` records), the
        checkpoint moving to the last one's cursor: fewer, larger commits on a
        fast link, while on a slow one each batch is applied as soon as it has
        arrived, as before."""
        me = self.records.instance_id
        start = int(self.records.checkpoint(collection, peer_id)["cursor"])
        ready: queue.Queue[_Fetched | BaseException | None] = queue.Queue(PREFETCH)
        stop = threading.Event()

        def put(item: _Fetched | BaseException | None) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def reader() -> None:
            since = start
            try:
                while not stop.is_set():
                    try:
                        batch = transport.pull(
                            collection,
                            me,
                            since,
                            self.settings.batch_records,
                            self.settings.batch_bytes,
                        )
                    except NotFound:
                        break  # the peer does not have this collection (yet)
                    if not put(_Fetched(batch, _parsed(batch))):
                        return
                    cursor = int(batch["cursor"])
                    if not (batch.get("more") and cursor > since):
                        break
                    since = cursor
            except BaseException as exc:  # handed to the writer, which raises it
                put(exc)
                return
            put(None)

        thread = threading.Thread(target=reader, name=f"pull-{collection}", daemon=True)
        thread.start()
        held: list[_Fetched | BaseException | None] = []

        def take(block: bool) -> object:
            if held:
                return held.pop()
            try:
                return ready.get(block)
            except queue.Empty:
                return _EMPTY

        try:
            while True:
                item = take(True)
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, _Fetched)
                group = [item]
                size = item.size()
                while item.parsed is not None and size < GROUP_RECORDS:
                    nxt = take(False)
                    if nxt is _EMPTY:
                        break
                    if (
                        not isinstance(nxt, _Fetched)
                        or nxt.parsed is None
                        or size + nxt.size() > GROUP_RECORDS
                    ):
                        held.append(nxt)  # type: ignore[arg-type]
                        break
                    group.append(nxt)
                    size += nxt.size()
                self._apply_group(transport, collection, peer_id, group, stats)
                progress(files_done=stats["pulled"] + stats["pushed"])
        finally:
            stop.set()
            thread.join()

    def _apply_group(
        self,
        transport: Transport,
        collection: str,
        peer_id: str,
        group: list[_Fetched],
        stats: dict[str, Any],
    ) -> None:
        """Apply consecutive batches of the peer's feed in one transaction."""
        for item in group:
            if item.batch.get("source") != peer_id:
                raise PermanentError(
                    f"the peer answered as instance {item.batch.get('source')!r}, not {peer_id!r}"
                )
        first, last = group[0].batch, group[-1].batch
        changes: list[Any] | ParsedBatch
        if len(group) == 1 and group[0].parsed is None:
            changes = first["changes"]  # malformed: ``apply`` says what is wrong
        else:
            changes = combine_batches([item.parsed for item in group if item.parsed is not None])
        need = self.records.unmatched_echoes(collection, changes)
        if need:  # states we sent once but no longer hold (restored from backup)
            raw = [c for item in group for c in item.batch["changes"]]
            changes = raw + transport.fetch(collection, need)
        try:
            result = self.records.apply(
                collection,
                changes,
                source=peer_id,
                epoch=str(last.get("epoch", "")),
                cursor_from=int(first["since"]),
                cursor_to=int(last["cursor"]),
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
        """Send our feed from the checkpoint the peer holds. Each answer says the
        peer's checkpoint after the batch, where the next batch starts; that next
        batch is read from our database while the current one is in flight."""
        if not self.records.has_collection(collection):
            return  # we do not have it: nothing to push

        def read(since: int) -> tuple[dict[str, Any], list[str]]:
            return self.records.feed_batch(
                collection,
                since,
                requester=peer_id,
                limit=self.settings.batch_records,
                max_bytes=self.settings.batch_bytes,
                protocol=transport.protocol,
            )

        since = int(transport.checkpoint(collection, self.records.instance_id)["cursor"])
        with ThreadPoolExecutor(1, thread_name_prefix="push-read") as pool:
            upcoming: tuple[int, Future[tuple[dict[str, Any], list[str]]]] | None = None
            while True:
                if upcoming is not None and upcoming[0] == since:
                    header, changes = upcoming[1].result()
                else:
                    header, changes = read(since)
                upcoming = None
                if header["cursor"] <= since:
                    return
                if header["more"]:
                    upcoming = (int(header["cursor"]), pool.submit(read, int(header["cursor"])))
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
                since = _int(result.get("cursor"), int(header["cursor"]))


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
