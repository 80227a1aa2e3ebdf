"""The files of a batch upload's header: JSON's own types, nothing coerced, names
relative and given once (``dataferry.datasets.batchheader``)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from dataferry.datasets.batchheader import BatchFile, batch_files
from dataferry.datasets.peerfs import batch_header
from dataferry.endpoints.filesystem import MAX_FILE_SIZE
from dataferry.errors import InvalidRequest

GOOD = {"upload": "d/.a.1.dftmp", "path": "d/a", "size": 3, "data": True}


def test_a_well_formed_header_gives_its_files_with_names_cleaned() -> None:
    held = {"upload": "./e//.b.1.dftmp", "path": "e/./b", "size": MAX_FILE_SIZE, "data": False}
    assert batch_files([GOOD, held, {**GOOD, "upload": "f/.c.dftmp", "path": "c", "size": 0}]) == [
        BatchFile("d/.a.1.dftmp", "d/a", 3, True),
        BatchFile("e/.b.1.dftmp", "e/b", MAX_FILE_SIZE, False),
        BatchFile("f/.c.dftmp", "c", 0, True),
    ]
    assert batch_files([]) == []


def test_mtime_is_optional_whole_nanoseconds() -> None:
    """The modification time to set: absent or null sets none; 0 to 2^63-1 is kept."""
    files = [
        {**GOOD, "mtime": 1580702706_123456789},
        {**GOOD, "upload": "d/.b.1.dftmp", "path": "d/b", "mtime": None},
        {**GOOD, "upload": "d/.c.1.dftmp", "path": "d/c", "mtime": 0},
        {**GOOD, "upload": "d/.e.1.dftmp", "path": "d/e", "mtime": 2**63 - 1},
    ]
    assert [f.mtime for f in batch_files(files)] == [1580702706_123456789, None, 0, 2**63 - 1]
    assert batch_files([GOOD])[0].mtime is None


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"data": 1}, "'data' must be true or false, not 1"),
        ({"data": 0}, "'data' must be true or false"),
        ({"data": "yes"}, "'data' must be true or false, not 'yes'"),
        ({"data": "false"}, "'data' must be true or false"),
        ({"data": None}, "'data' must be true or false"),
        ({"data": ["x" * 100]}, "..."),
        ({"size": True}, "'size' must be a whole number"),
        ({"size": "3"}, "'size' must be a whole number"),
        ({"size": 3.0}, "'size' must be a whole number"),
        ({"size": None}, "'size' must be a whole number"),
        ({"size": -1}, "'size' must be a whole number"),
        ({"size": MAX_FILE_SIZE + 1}, "'size' must be a whole number"),
        ({"size": 10**30}, "'size' must be a whole number"),
        ({"upload": 5}, "'upload' must be a string"),
        ({"path": None}, "'path' must be a string"),
        ({"path": "../a"}, "escapes the endpoint's root"),
        ({"path": "d/../../a"}, "escapes the endpoint's root"),
        ({"path": "/etc/a"}, "is absolute"),
        ({"upload": "/tmp/.a.1.dftmp"}, "is absolute"),
        ({"upload": "../.a.1.dftmp"}, "escapes the endpoint's root"),
        ({"path": "d\\a"}, "backslash"),
        ({"path": "d/a\x00"}, "control character"),
        ({"path": ""}, "'path' names the endpoint's root"),
        ({"path": "./."}, "'path' names the endpoint's root"),
        ({"durable": True}, "unknown field(s) durable"),
        ({"mtime": -1}, "'mtime' must be whole nanoseconds since 1970"),
        ({"mtime": 1.5}, "'mtime' must be whole nanoseconds"),
        ({"mtime": 1e18}, "'mtime' must be whole nanoseconds"),
        ({"mtime": float("nan")}, "'mtime' must be whole nanoseconds"),
        ({"mtime": "1580702706"}, "'mtime' must be whole nanoseconds"),
        ({"mtime": True}, "'mtime' must be whole nanoseconds"),
        ({"mtime": 2**63}, "'mtime' must be whole nanoseconds"),
        ({"mtime": 10**30}, "'mtime' must be whole nanoseconds"),
        ({"mtime": [1]}, "'mtime' must be whole nanoseconds"),
    ],
)
def test_a_loose_field_is_refused_and_named(change: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        batch_files([GOOD, {**GOOD, "upload": "d/.b.1.dftmp", "path": "d/b", **change}])
    assert refused.value.message.startswith("batch: file 1")
    assert says in refused.value.message
    assert len(refused.value.message) < 200


@pytest.mark.parametrize("missing", ["upload", "path", "size", "data"])
def test_every_field_is_required(missing: str) -> None:
    doc = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(InvalidRequest, match=f"batch: file 0.*needs {missing}"):
        batch_files([doc])


@pytest.mark.parametrize("doc", [None, 3, "d/a", ["d/.a.1.dftmp", "d/a", 3, True]])
def test_a_file_is_an_object(doc: Any) -> None:
    with pytest.raises(InvalidRequest, match="batch: file 0 is not an object"):
        batch_files([doc])


@pytest.mark.parametrize(
    "second",
    [
        {"upload": "d/.b.1.dftmp", "path": "d/a"},  # the same final path
        {"upload": "d/.b.1.dftmp", "path": "d//./a"},  # the same, spelled otherwise
        {"upload": "d/.a.1.dftmp", "path": "d/b"},  # the same temporary name
        {"upload": "d/.b.1.dftmp", "path": "d/.a.1.dftmp"},  # onto another's upload
        {"upload": "d/.b.1.dftmp", "path": "d/.b.1.dftmp"},  # onto its own upload
    ],
)
def test_no_name_is_given_twice(second: dict[str, str]) -> None:
    with pytest.raises(InvalidRequest, match=r"batch: file 1 names .*, as file [01] does already"):
        batch_files([GOOD, {**GOOD, **second}])


def _body(header: bytes) -> bytes:
    return len(header).to_bytes(4, "big") + header


def test_the_header_is_exactly_files_and_gives_no_key_twice() -> None:
    """``{"files": [...]}`` and nothing else at the top; no object in the header
    gives a key twice (which one counts would be a guess: the last did)."""
    file = '{"upload": "d/.a.1.dftmp", "path": "d/a", "size": 3, "data": true}'
    good = f'{{"files": [{file}]}}'.encode()
    assert batch_header(_body(good)) == ([GOOD], 4 + len(good))
    for header, says in [
        (f'{{"files": [{file}], "durable": true}}', "unknown field(s) durable"),
        (f'{{"files": [{file}], "sync": 1, "a": 2}}', "unknown field(s) a, sync"),
        (f'{{"files": [], "files": [{file}]}}', "gives 'files' twice"),
        (
            '{"files": [{"upload": "d/.a.1.dftmp", "path": "d/a", "size": 9, "size": 3,'
            ' "data": true}]}',
            "gives 'size' twice",
        ),
        ('{"files": [{"upload": "x", "upload": "y"}]}', "gives 'upload' twice"),
    ]:
        with pytest.raises(ValueError, match=re.escape(says)):
            batch_header(_body(header.encode()))
