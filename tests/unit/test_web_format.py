"""How the dashboard shows bytes, durations and progress (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dataferry.api.web.format import (
    human_bytes,
    human_duration,
    progress,
    utc_moment,
    utc_time,
)

T0 = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)


def doc(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "state": "running",
        "bytes_done": 0,
        "bytes_total": None,
        "task_percent": 0.0,
        "created": T0.isoformat(),
    }
    return {**base, **kw}


def test_human_bytes() -> None:
    assert human_bytes(None) == "?"
    assert human_bytes(0) == "0 B"
    assert human_bytes(1023) == "1023 B"
    assert human_bytes(1024) == "1.0 KiB"
    assert human_bytes(1536 * 1024) == "1.5 MiB"
    assert human_bytes(3 * 1024**5 * 1024) == "3072.0 PiB"


def test_human_duration() -> None:
    assert human_duration(None) == human_duration(-1) == "\u2013"
    assert human_duration(0.4) == "0 s"
    assert human_duration(59) == "59 s"
    assert human_duration(61) == "1 min 01 s"
    assert human_duration(3 * 3600 + 120) == "3 h 02 min"
    assert human_duration(2 * 86400 + 3 * 3600) == "2 d 3 h"


def test_progress_rate_and_eta_of_a_running_job() -> None:
    running = doc(bytes_done=50 * 1024**2, bytes_total=200 * 1024**2)
    p = progress(running, T0 + timedelta(seconds=10))
    assert p.percent == 25.0
    assert p.done == "50.0 MiB of 200.0 MiB"
    assert p.rate == "5.0 MiB/s"
    assert p.eta == "30 s"


def test_progress_of_finished_and_unplanned_jobs() -> None:
    later = T0 + timedelta(seconds=5)
    done = progress(doc(state="succeeded", bytes_done=0, bytes_total=0), later)
    assert (done.percent, done.rate, done.eta) == (100.0, "", "")
    unplanned = progress(doc(task_percent=12.345), later)
    assert (unplanned.percent, unplanned.done, unplanned.rate) == (12.3, "", "")
    failed = progress(doc(state="failed", bytes_done=10, bytes_total=40), later)
    assert (failed.percent, failed.rate) == (25.0, "")


def test_utc_moment_from_nanoseconds_and_from_iso_text() -> None:
    ns = int(datetime(2026, 12, 8, 1, 2, 3, tzinfo=UTC).timestamp()) * 10**9 + 999_999_999
    assert utc_moment(ns) == "2026-12-08 01:02:03 UTC"  # to the second, not rounded up
    assert utc_moment("2026-12-08T01:02:03+00:00") == "2026-12-08 01:02:03 UTC"
    assert utc_moment("2026-12-08T03:02:03+02:00") == "2026-12-08 01:02:03 UTC"


def test_utc_time_of_a_file_time_and_of_nothing() -> None:
    assert utc_time(1_765_155_723_999_999_999) == "2025-12-08 01:02:03"  # cut, not rounded up
    assert utc_time("2026-12-08T03:02:03+02:00") == "2026-12-08 01:02:03"
    assert utc_time(None) == "\u2013"
