"""Include/exclude patterns of a transfer (gitignore's rules, through pathspec)."""

from __future__ import annotations

from typing import Any

import pytest

from dataferry.errors import InvalidRequest
from dataferry.transfers.filters import MAX_PATTERNS, PathFilter, check_patterns
from dataferry.transfers.request import TransferRequest

FILES = [
    "a.csv",
    "a.tmp",
    "keep.tmp",
    "raw/b.csv",
    "raw/deep/c.csv",
    "raw/deep/c.tmp",
    "cache/x.bin",
    "sub/cache/y.bin",
    "sub/cachefile",
    "top.txt",
    "sub/top.txt",
]


def taken(include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> list[str]:
    chosen = PathFilter(include, exclude)
    return [f for f in FILES if chosen.takes(f)]


def test_no_patterns_take_everything() -> None:
    assert not PathFilter()
    assert taken() == FILES


def test_exclude_follows_gitignore() -> None:
    assert taken(exclude=("*.tmp",)) == [f for f in FILES if not f.endswith(".tmp")]
    # a trailing slash: folders of that name at any depth, not a file of that name
    assert taken(exclude=("cache/",)) == [f for f in FILES if "cache/" not in f]
    # a leading slash anchors at the source folder
    assert "sub/top.txt" in taken(exclude=("/top.txt",))
    assert "top.txt" not in taken(exclude=("/top.txt",))
    # ** crosses folders; ! makes an exception to the patterns before it
    assert taken(exclude=("raw/**/*.csv",)) == [
        f for f in FILES if f not in ("raw/b.csv", "raw/deep/c.csv")
    ]
    assert "keep.tmp" in taken(exclude=("*.tmp", "!keep.tmp"))


def test_include_then_exclude() -> None:
    assert taken(include=("*.csv",)) == ["a.csv", "raw/b.csv", "raw/deep/c.csv"]
    assert taken(include=("raw/",), exclude=("*.tmp",)) == ["raw/b.csv", "raw/deep/c.csv"]


def test_names_that_are_not_utf8_are_matched_too() -> None:
    # a file name with undecodable bytes arrives surrogate-escaped (os.fsdecode)
    assert not PathFilter(exclude=("*.bin",)).takes("caf\udce9.bin")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("*.tmp", "must be a list of patterns"),
        ({"a": 1}, "must be a list of patterns"),
        ([""], "matches nothing"),
        (["   "], "matches nothing"),
        (["#comment"], "matches nothing"),
        (["/"], "matches nothing"),
        (["!"], "is not valid"),
        (["a\\"], "is not valid"),
        (["a\nb"], "control character"),
        (["a\x00"], "control character"),
        ([7], "is not text"),
        ([None], "is not text"),
        (["x" * 1001], "longer than 1000"),
        (["*.a"] * (MAX_PATTERNS + 1), f"at most {MAX_PATTERNS}"),
    ],
)
def test_bad_patterns_are_refused(values: Any, message: str) -> None:
    with pytest.raises(InvalidRequest, match="exclude") as info:
        check_patterns("exclude", values)
    assert message in info.value.message
    assert len(info.value.message) < 200  # a long value is cut, not quoted whole


def test_request_keeps_patterns_through_its_parameters() -> None:
    req = TransferRequest.build("a:x", "b:y", include=["*.csv"], exclude=["tmp/", "!tmp/k"])
    params = req.params()
    assert params["include"] == ["*.csv"] and params["exclude"] == ["tmp/", "!tmp/k"]
    assert TransferRequest.from_params(params) == req
    # no patterns: the job's parameters are as they were before patterns existed
    plain = TransferRequest.build("a:x", "b:y").params()
    assert "include" not in plain and "exclude" not in plain
    assert TransferRequest.from_params(plain).filter.takes("anything")


def test_a_listing_passes_over_excluded_folders_only_when_nothing_below_can_be_taken() -> None:
    assert PathFilter(exclude=("cache/",)).skips_folder("cache")
    assert PathFilter(exclude=("cache/",)).skips_folder("deep/cache")
    assert PathFilter(exclude=("*.tmp",)).skips_folder("x.tmp")
    assert not PathFilter(exclude=("cache/",)).skips_folder("cachefile")
    # a "!" exception may take a file back from any folder: every folder is listed
    both = PathFilter(exclude=("cache/", "!cache/keep.txt"))
    assert not both.skips_folder("cache") and both.takes("cache/keep.txt")
    # include alone never passes a folder over (a file below it may match)
    assert not PathFilter(include=("*.csv",)).skips_folder("raw")
    assert PathFilter(include=("*.csv",), exclude=("raw/",)).skips_folder("raw")
    chosen = PathFilter(exclude=("cache/", "*.tmp"))
    assert chosen.passes_over("cache", True) and chosen.passes_over("a.tmp", False)
    assert not chosen.passes_over("a.txt", False) and not chosen.passes_over("raw", True)
