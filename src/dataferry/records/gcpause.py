"""Pause Python's cyclic garbage collector around the decoding and encoding of
replication batches.

A batch of a few thousand records becomes hundreds of thousands of small
dicts and lists. Each allocation counts towards the collector's thresholds, so
decoding one batch set off several full collections, each walking the whole
heap (in a server, every live object) while none of the new objects can be
garbage: the JSON values are acyclic and freed by reference counting. In
measurements this doubled the cost of ``orjson.loads`` and of reading the
feed. The pause lasts one batch (bounded by ``records.batch_records`` and
``records.batch_bytes``); the collector runs normally again when the last
paused section in the process ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_disabled_here = False


@contextmanager
def paused() -> Iterator[None]:
    """Collector off while any thread is inside a paused section (reentrant)."""
    global _depth, _disabled_here
    with _lock:
        if _depth == 0 and gc.isenabled():
            gc.disable()
            _disabled_here = True
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _disabled_here:
                _disabled_here = False
                gc.enable()
