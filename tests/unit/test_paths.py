"""Path safety: nothing a user types can leave an endpoint's root."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataferry.endpoints.paths import clean_relative, is_within, split_location
from dataferry.errors import InvalidRequest


@pytest.mark.parametrize(
    ("given_path", "expected"),
    [
        ("", ""),
        (".", ""),
        ("./", ""),
        ("a/b", "a/b"),
        ("a//b/./c/", "a/b/c"),
        ("ünï/cödé.txt", "ünï/cödé.txt"),
        ("..a/b..", "..a/b.."),
        ("a b/c", "a b/c"),
    ],
)
def test_clean(given_path: str, expected: str) -> None:
    assert clean_relative(given_path) == expected


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("..", "escapes"),
        ("../x", "escapes"),
        ("a/../../x", "escapes"),
        ("a/..", "escapes"),
        ("/etc/passwd", "absolute"),
        ("//x", "absolute"),
        ("a\\..\\b", "backslash"),
        ("a\0b", "control"),
        ("a\nb", "control"),
    ],
)
def test_refused(bad: str, why: str) -> None:
    with pytest.raises(InvalidRequest, match=why):
        clean_relative(bad)


@given(st.text())
def test_never_escapes(path: str) -> None:
    try:
        out = clean_relative(path)
    except InvalidRequest:
        return
    assert not out.startswith("/")
    assert ".." not in out.split("/")
    assert "" not in out.split("/") or out == ""


def test_split_location() -> None:
    assert split_location("lab:data/x") == ("lab", "data/x")
    assert split_location("lab:") == ("lab", "")
    for bad in ("nocolon", ":path"):
        with pytest.raises(InvalidRequest, match="ENDPOINT:PATH"):
            split_location(bad)
    with pytest.raises(InvalidRequest):
        split_location("lab:../up")


def test_is_within() -> None:
    assert is_within("/data", "/data")
    assert is_within("/data", "/data/x")
    assert not is_within("/data", "/database")
    assert not is_within("/data", "/")
    assert is_within("/", "/anything")


def test_absolute_path_refusal_says_how_to_name_the_root() -> None:
    # `dataferry transfer src:/ ...` is what an rclone user types first.
    with pytest.raises(InvalidRequest, match=r"'' or '\.' is the root itself"):
        clean_relative("/")
