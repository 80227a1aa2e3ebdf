"""Size and age limits of a transfer (rclone's --min-size/--max-size/--min-age/--max-age)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from dataferry.durations import parse_duration
from dataferry.errors import InvalidRequest
from dataferry.transfers.limits import MAX_SIZE, Limits, parse_size
from dataferry.transfers.plan import choose
from dataferry.transfers.request import TransferRequest
from dataferry.transfers.store import PlannedFile

NOW = 1_800_000_000 * 10**9
DAY = 86400


def ago(seconds: float) -> int:
    return NOW - int(seconds * 10**9)


@pytest.mark.parametrize(
    ("text", "size"),
    [("0", 0), ("512", 512), ("10K", 10240), ("10k", 10240), ("10M", 10 * 1024**2),
     ("1G", 1024**3), ("2T", 2 * 1024**4), ("1P", 1024**5), (" 3M ", 3 * 1024**2)],
)  # fmt: skip
def test_sizes_read_as_rclone_reads_them(text: str, size: int) -> None:
    assert parse_size("min_size", text) == size


@pytest.mark.parametrize("text", ["", " ", "10X", "10MB", "1.5G", "-1", "M", "1e3", "8192P"])
def test_sizes_that_are_not_sizes_are_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidRequest, match="max_size"):
        parse_size("max_size", text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("12h", 43200), ("7d", 7 * DAY), ("2w", 14 * DAY),
     ("90", 90), ("1.5h", 5400)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration("max_age", text) == seconds


@pytest.mark.parametrize("text", ["d", "7x", "7 d", "-7d", "7D", "inf", "nan"])
def test_durations_that_are_not_durations_are_refused(text: str) -> None:
    with pytest.raises(InvalidRequest, match="min_age"):
        parse_duration("min_age", text)


def test_an_empty_duration_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="is not a duration"):
        parse_duration("max_age", "")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"min_size": -1}, "min_size must be between 0"),
        ({"max_size": MAX_SIZE + 1}, "max_size must be between 0"),
        ({"min_size": 1.0}, "min_size must be a whole number"),
        ({"max_size": True}, "max_size must be a whole number"),
        ({"max_size": "10M"}, "max_size must be a whole number"),
        ({"min_age": 0}, "min_age must be more than 0"),
        ({"max_age": -5}, "max_age must be more than 0"),
        ({"max_age": math.nan}, "max_age must be more than 0"),
        ({"max_age": math.inf}, "max_age must be more than 0"),
        ({"max_age": 101 * 365 * DAY}, "100 years"),
        ({"min_age": False}, "min_age must be a number"),
        ({"min_age": "7d"}, "min_age must be a number"),
        ({"min_size": 10, "max_size": 9}, "min_size 10 is more than max_size 9"),
        ({"min_age": 2 * DAY, "max_age": DAY}, "min_age 172800 is more than max_age 86400"),
    ],
)
def test_bad_limits_are_refused_naming_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        TransferRequest.build("a:x", "b:y", **fields)


def test_a_file_is_taken_within_every_limit() -> None:
    limits = Limits(min_size=10, max_size=100, min_age=DAY, max_age=7 * DAY)
    assert limits.takes(10, ago(2 * DAY), NOW) and limits.takes(100, ago(7 * DAY), NOW)
    assert not limits.takes(9, ago(2 * DAY), NOW)
    assert not limits.takes(101, ago(2 * DAY), NOW)
    assert not limits.takes(50, ago(DAY - 1), NOW)  # too young
    assert not limits.takes(50, ago(7 * DAY + 1), NOW)  # too old
    assert not limits.takes(50, None, NOW)  # an unknown time is neither
    assert Limits(max_age=DAY).takes(0, NOW + 10**9, NOW)  # the future is young
    assert not Limits(min_age=DAY).takes(0, NOW + 10**9, NOW)
    assert Limits(max_size=5).takes(5, None, NOW)  # size limits need no time
    assert not Limits() and Limits(min_size=0)


def test_choose_counts_what_an_age_limit_left_out_for_want_of_a_time() -> None:
    files = [
        PlannedFile("new", 10, ago(60)),
        PlannedFile("old", 10, ago(30 * DAY)),
        PlannedFile("unknown", 10, None),
        PlannedFile("unknown-big", 10_000, None),  # left out by its size first
    ]
    taken, unknown = choose(files, Limits(max_size=100, max_age=DAY), NOW)
    assert [f.path for f in taken] == ["new"] and unknown == 1
    taken, unknown = choose(files, Limits(max_size=100), NOW)
    assert [f.path for f in taken] == ["new", "old", "unknown"] and unknown == 0
    assert choose(files, Limits(), NOW) == (files, 0)


def test_limits_survive_the_job_params() -> None:
    req = TransferRequest.build("a:x", "b:y", min_size=0, max_size=2**40, max_age=7 * DAY)
    params = req.params()
    assert params["min_size"] == 0 and params["max_size"] == 2**40
    assert params["max_age"] == 7 * DAY and "min_age" not in params
    assert TransferRequest.from_params(params) == req
    assert "min_size" not in TransferRequest.build("a:x", "b:y").params()
