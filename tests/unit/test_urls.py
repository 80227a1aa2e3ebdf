"""The one check of peer, site and sink target URLs: what each refusal says."""

from __future__ import annotations

import pytest

from dataferry.urls import parse_base_url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:99999/", "port 99999 is not between 1 and 65535"),
        ("http://127.0.0.1:0", "port 0 is not between 1 and 65535"),
        ("http://127.0.0.1:x/", "port 'x' is not a number"),
        ("http://[::1]:+80/", "port '+80' is not a number"),
        ("http://[::1", "Invalid IPv6 URL"),
        ("ftp://h/", "it must start with http:// or https://"),
        ("http://", "it names no host"),
        ("http://h/a b", "it holds a space or a control character"),
        ("http://h/\u200b", "it holds a space or a control character"),
        ("https://a..b.example", "host name 'a..b.example' has an empty or too long label"),
    ],
)
def test_refused_with_why(url: str, why: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_base_url(url)
    assert str(err.value) == why


@pytest.mark.parametrize(
    "url",
    ["http://h", "https://u:p@h:8443/base/in?x=1", "http://[::1]:8080/x", "http://münchen.de/"],
)
def test_taken(url: str) -> None:
    assert parse_base_url(url).hostname
