"""How the dashboard shows numbers and times (pure). ``static/dashboard.js`` mirrors
these for live updates; keep the two in step."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(n: int | float | None) -> str:
    if n is None:
        return "?"
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "\u2013"  # en dash: unknown
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def utc_time(when: int | str | None) -> str:
    """A moment in UTC to the second, ``2026-12-08 01:02:03``, from nanoseconds since
    1970 (a file's mtime; cut, not rounded up) or from ISO 8601 text; None: unknown."""
    if when is None:
        return "\u2013"  # en dash: unknown
    if isinstance(when, int):
        moment = datetime.fromtimestamp(when // 10**9, UTC)
    else:
        moment = parse_time(when).astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def utc_moment(when: int | str) -> str:
    """A moment as people read it in a sentence: ``2026-12-08 01:02:03 UTC``."""
    return f"{utc_time(when)} UTC"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class Progress:
    percent: float  # 0..100
    done: str  # "1.0 GiB of 2.0 GiB"
    rate: str  # "12.3 MiB/s" or ""
    eta: str  # "3 min 05 s" or ""


def progress(doc: dict[str, Any], now: datetime) -> Progress:
    """Progress of a job document. The rate is the average since the job was created
    (the page's script refines it from successive samples); the ETA follows from it."""
    total = doc.get("bytes_total")
    done = int(doc.get("bytes_done") or 0)
    if doc["state"] == "succeeded":
        percent = 100.0
    elif total:
        percent = min(100.0, 100.0 * done / total)
    else:
        percent = float(doc.get("task_percent") or 0.0)
    amount = f"{human_bytes(done)} of {human_bytes(total)}" if total is not None else ""
    rate = eta = ""
    if doc["state"] == "running" and done > 0:
        elapsed = (now - parse_time(doc["created"])).total_seconds()
        if elapsed > 0:
            per_second = done / elapsed
            rate = f"{human_bytes(per_second)}/s"
            if total and per_second > 0:
                eta = human_duration((total - done) / per_second)
    return Progress(round(percent, 1), amount, rate, eta)


def age(created: str, now: datetime) -> str:
    return human_duration((now - parse_time(created)).total_seconds())
