"""A source file's modification time from a listing entry, as each protocol gives it
(``endpoints.filesystem.mtime_ns_of``): exact nanoseconds, or None where it is not told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from dataferry.endpoints.filesystem import MAX_MTIME_NS, mtime_ns_of

PARIS_WINTER = timezone(timedelta(hours=1))
WHEN = 1580702706_123456000  # 2020-02-03 04:05:06.123456 UTC


@pytest.mark.parametrize(
    ("info", "ns"),
    [
        ({"mtime_ns": WHEN + 789}, WHEN + 789),  # a dataferry:// peer: exact
        ({"mtime": 1580702706}, 1580702706_000000000),  # seconds (fsspec local: a float)
        ({"mtime": datetime(2020, 2, 3, 4, 5, 6, 123456, tzinfo=UTC)}, WHEN),  # sshfs
        (
            {"mtime": datetime(2020, 2, 3, 5, 5, 6, 123456, tzinfo=timezone(timedelta(hours=1)))},
            WHEN,
        ),
        ({"LastModified": datetime(2020, 2, 3, 4, 5, 6, 123456, tzinfo=UTC)}, WHEN),  # S3
        ({"Last-Modified": "Mon, 03 Feb 2020 04:05:06 GMT"}, 1580702706_000000000),  # HTTP
        ({"mtime_ns": 0}, 0),
        ({"mtime_ns": MAX_MTIME_NS}, MAX_MTIME_NS),
    ],
)
def test_each_protocols_time_in_nanoseconds(info: dict[str, Any], ns: int) -> None:
    assert mtime_ns_of({"size": 1, **info}) == ns


@pytest.mark.parametrize(
    "info",
    [
        {},  # HTTP without Last-Modified
        {"mtime": None},
        {"mtime_ns": -1},  # before 1970: not kept
        {"mtime": -5.0},
        {"mtime_ns": MAX_MTIME_NS + 1},
        {"mtime": float("nan")},
        {"mtime": float("inf")},
        {"mtime": True},
        {"mtime": "yesterday"},
        {"Last-Modified": "not a date"},
        {"LastModified": ""},
    ],
)
def test_no_time_or_nonsense_is_none(info: dict[str, Any]) -> None:
    assert mtime_ns_of({"size": 1, **info}) is None
