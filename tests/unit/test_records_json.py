"""The records' JSON helpers keep every number exactly as it was sent."""

from __future__ import annotations

import pytest

from dataferry.records.model import dumps, loads

EXACT = [
    2**64 - 1,  # orjson's largest exact integer
    2**64,  # orjson alone would read this back as a float
    -(2**63) - 1,
    10**30,
    -(10**25),
]


@pytest.mark.parametrize("number", EXACT)
def test_integers_beyond_64_bits_round_trip(number: int) -> None:
    doc = {"n": number, "nested": [{"m": number}], "s": "x"}
    back = loads(dumps(doc))
    assert back == doc
    assert type(back["n"]) is int and type(back["nested"][0]["m"]) is int


def test_str_and_bytes_decode_alike() -> None:
    text = '{"n": 123456789012345678901234, "f": 1.5, "t": "caf\u00e9"}'
    assert (
        loads(text)
        == loads(text.encode())
        == {
            "n": 123456789012345678901234,
            "f": 1.5,
            "t": "caf\u00e9",
        }
    )


def test_long_digit_runs_in_strings_and_floats_stay_as_they_are() -> None:
    doc = {"id": "1234567890123456789012", "f": 0.1234567890123456789, "big": 1e300}
    assert loads(dumps(doc)) == doc


def test_plain_documents_and_invalid_json() -> None:
    assert loads(b'{"a": [1, 2.5, null, true, "\\u0000"]}') == {"a": [1, 2.5, None, True, "\x00"]}
    with pytest.raises(ValueError):
        loads(b'{"a": ')
