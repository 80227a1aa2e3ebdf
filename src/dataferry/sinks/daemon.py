"""The sink daemon inside ``dataferry serve``: one loop thread, and per sink a pool
of ``concurrency`` sender threads sharing one keep-alive HTTP connection pool.

The loop polls each active sink's source when its poll interval has passed (or at
once when woken: a collection changed, a sink was added or resumed), claims due
changes while fewer than ``2 x concurrency`` are in flight, and records finished
sends in batches (one transaction for many). Several processes on one database
share the work safely: polls and sends are leased in the database.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from dataferry.jobs.executor import claim_owner
from dataferry.sinks import delivery, sharing
from dataferry.sinks.engine import SinkEngine
from dataferry.sinks.model import Claimed, Outcome, Sink
from dataferry.sinks.store import SinkStore

log = logging.getLogger(__name__)


@dataclass
class _Worker:
    sink: Sink
    owner: str
    http: httpx.Client
    pool: ThreadPoolExecutor
    in_flight: set[int] = field(default_factory=set)
    last_poll: float = float("-inf")

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.http.close()


class SinkDaemon:
    def __init__(self, engine: SinkEngine, store: SinkStore, tick_seconds: float) -> None:
        self.engine = engine
        self.store = store
        self.tick = tick_seconds
        self._event = threading.Event()
        self._poll_now: set[str] = set()
        self._poll_all = False
        self._poll_sources: set[str] = set()
        self._lock = threading.Lock()
        self._results: queue.SimpleQueue[tuple[int, Claimed, Outcome | None]] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._workers: dict[int, _Worker] = {}
        self._sinks: dict[int, Sink] = {}  # opened definitions, reused while unchanged
        self._broken: dict[int, datetime] = {}  # definitions that cannot run, logged once

    # -- control ----------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="dataferry-sinks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._event.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self, sink_name: str | None = None) -> None:
        """Poll now: one sink, or every sink (a collection changed, a sink was added)."""
        with self._lock:
            if sink_name is None:
                self._poll_all = True
            else:
                self._poll_now.add(sink_name)
        self._event.set()

    def wake_source(self, label: str) -> None:
        """Poll now every sink reading this source (``collection:NAME``)."""
        with self._lock:
            self._poll_sources.add(label)
        self._event.set()

    # -- loop -------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self._round()
            except Exception:
                log.exception("sink loop failed; trying again shortly")
                busy = False
            if not busy:
                self._event.wait(self.tick)
                self._event.clear()
        self._shutdown()

    def _round(self) -> bool:
        """One pass over every sink; True if there may be more to do right away."""
        with self._lock:
            poll_all, self._poll_all = self._poll_all, False
            poll_now, self._poll_now = self._poll_now, set()
            labels, self._poll_sources = self._poll_sources, set()
        self._drain()
        active: dict[int, Sink] = {}
        every = self.store.all()
        for stored in every:
            if stored.paused or not stored.url:
                continue
            cached = self._sinks.get(stored.id)
            if cached is not None and cached.updated == stored.updated:
                active[stored.id] = cached
                continue
            try:
                active[stored.id] = self._sinks[stored.id] = self.engine.sink(stored)
            except Exception as exc:
                if self._broken.get(stored.id) != stored.updated:  # once, not every tick
                    self._broken[stored.id] = stored.updated
                    log.warning("sink %s cannot run: %s", stored.name, exc)
        # Of sinks setting one last_sync column (stored by an older version), only the
        # oldest is run: it sends every row, and the others say why they are idle.
        shadowed = self.engine.shadowed(every) if active else {}
        for stored in every:
            other = shadowed.get(stored.id)
            if other is None or active.pop(stored.id, None) is None:
                continue
            if self._broken.get(stored.id) != stored.updated:  # once, not every tick
                self._broken[stored.id] = stored.updated
                reason = sharing.shadowed_reason(other)
                log.warning("sink %s is not run: it %s", stored.name, reason)
        for sink_id in list(self._workers):
            w = self._workers[sink_id]
            sink = active.get(sink_id)
            if sink is None or sink.updated != w.sink.updated:
                if w.in_flight:
                    continue  # finish what is in flight first
                self._workers.pop(sink_id).close()
                if sink is None:
                    self.engine.forget(sink_id)
        busy = False
        now = time.monotonic()
        for sink in active.values():
            found = self._workers.get(sink.id)
            if found is None:
                w = _Worker(
                    sink,
                    claim_owner(self.engine.node),
                    delivery.client(sink.spec.concurrency, sink.spec.timeout),
                    ThreadPoolExecutor(sink.spec.concurrency, f"sink-{sink.name}"),
                )
                self._workers[sink.id] = w
            elif found.sink.updated != sink.updated:
                continue  # being replaced
            else:
                w = found
            if (
                poll_all
                or sink.name in poll_now
                or sink.spec.source.label in labels
                or now - w.last_poll >= sink.spec.poll_interval
            ):
                w.last_poll = now
                self.engine.poll(sink)
            room = 2 * sink.spec.concurrency - len(w.in_flight)
            if room > 0:
                claimed = self.engine.claim(sink, w.owner, room)
                for c in claimed:
                    w.in_flight.add(c.id)
                    w.pool.submit(self._send, w, c, time.monotonic())
                busy |= len(claimed) == room
        return self._wait_results() or busy

    def _send(self, w: _Worker, c: Claimed, claimed_at: float) -> None:
        # A send that could outlast its lease is not started: once the lease lapses
        # another process may send a newer version of the record, and this older one
        # would then reach the partner after it. Released, it is claimed again.
        left = claimed_at + self.engine.lease_seconds(w.sink) - time.monotonic()
        outcome: Outcome | None = None
        if left > w.sink.spec.timeout + 0.5:
            try:
                outcome = self.engine.send(w.sink, w.http, c)
            except Exception as exc:
                outcome = Outcome(False, None, f"internal error: {type(exc).__name__}: {exc}")
        self._results.put((w.sink.id, c, outcome))
        self._event.set()

    def _wait_results(self) -> bool:
        """Wait briefly for sends in flight, then record what finished."""
        if not any(w.in_flight for w in self._workers.values()):
            return False
        self._event.wait(self.tick)
        self._event.clear()
        return self._drain() > 0 or self._event.is_set()

    def _drain(self) -> int:
        by_sink: dict[int, list[tuple[Claimed, Outcome]]] = {}
        unsent: dict[int, list[int]] = {}
        while True:
            try:
                sink_id, c, outcome = self._results.get_nowait()
            except queue.Empty:
                break
            if outcome is None:
                unsent.setdefault(sink_id, []).append(c.id)
            else:
                by_sink.setdefault(sink_id, []).append((c, outcome))
        for sink_id, ids in unsent.items():
            w = self._workers.get(sink_id)
            if w is None:
                continue
            try:
                self.store.release(w.owner, ids)
            except Exception:
                log.exception("sink %s: releasing unsent changes failed", w.sink.name)
            w.in_flight.difference_update(ids)
        for sink_id, results in by_sink.items():
            w = self._workers.get(sink_id)
            if w is None:
                continue
            try:
                self.engine.complete(w.sink, w.owner, results)
            except Exception:
                # Not recorded: the leases expire and the changes are sent again.
                log.exception("sink %s: recording outcomes failed", w.sink.name)
            for c, _ in results:
                w.in_flight.discard(c.id)
        return sum(len(r) for r in by_sink.values()) + sum(len(i) for i in unsent.values())

    def _shutdown(self) -> None:
        for w in self._workers.values():
            w.pool.shutdown(wait=True, cancel_futures=True)
        self._drain()
        for w in self._workers.values():
            w.http.close()
            self.store.release(w.owner, list(w.in_flight))
        self._workers.clear()
        self.engine.close()
