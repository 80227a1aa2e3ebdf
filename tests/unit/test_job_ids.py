"""Job ids as RPC callers send them."""

from __future__ import annotations

from typing import Any

import pytest

from dataferry.jobs.model import parse_job_id


@pytest.mark.parametrize(
    ("value", "number"),
    [(7, 7), ("7", 7), (" 42 ", 42), (7.0, 7), (2**70, 2**70), (0, 0)],
)
def test_whole_numbers_are_ids(value: Any, number: int) -> None:
    assert parse_job_id(value) == number


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        1.5,
        float("inf"),
        float("-inf"),
        float("nan"),
        "1e3",
        "",
        "x",
        "-",
        None,
        [1],
        {},
    ],
)
def test_anything_else_is_not(value: Any) -> None:
    assert parse_job_id(value) is None
