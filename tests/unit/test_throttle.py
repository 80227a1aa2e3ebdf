"""The per-job bandwidth limit: never faster than the limit on average, shared by threads."""

from __future__ import annotations

import threading
import time

import pytest

from dataferry.transfers.throttle import Throttle

KiB = 1024


def test_no_limit_never_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    t = Throttle(0)
    for _ in range(1000):
        t.take(1024 * KiB)
    assert slept == []


def test_the_average_rate_stays_under_the_limit_across_threads() -> None:
    # 4 threads x 4 blocks of 64 KiB = 1 MiB at 2 MiB/s: at least half a second
    # (a lower bound only: a busy machine can only make it slower).
    t = Throttle(2048 * KiB)
    start = time.monotonic()

    def move() -> None:
        for _ in range(4):
            t.take(64 * KiB)

    threads = [threading.Thread(target=move) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert time.monotonic() - start >= 0.5 - 0.01
