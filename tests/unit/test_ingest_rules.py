"""Pure ingest rules: the metadata format, the built-in policy, the tar reader's checks."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from dataferry.config import IngestSettings
from dataferry.db.models.ingest import IngestFileRow, IngestKeyValueRow, IngestTransactionRow
from dataferry.ingest.bundle import open_bundle
from dataferry.ingest.metadata import (
    MAX_FIELD_CHARS,
    MAX_TIME_CHARS,
    check_metadata,
    data_path,
    parse_metadata,
)
from dataferry.ingest.policy import builtin_problems
from dataferry.ingest.tasks import BundleError
from tests.support.bundles import file_entry, make_bundle, metadata_for


def test_metadata_fields_and_files() -> None:
    meta = parse_metadata(json.dumps(metadata_for({"a/b.txt": b"x", "c": b""})))
    assert (meta.submitter, meta.project, meta.instrument) == ("10", "p1", "54")
    assert meta.key_values == (("Tag", "run-7"),)
    assert [f.path for f in meta.files] == ["a/b.txt", "c"]
    assert meta.total_bytes == 1


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("[", "not valid JSON"),
        ('{"a": 1}', "must be a JSON list"),
        ("[1]", "must be an object"),
        ('[{"value": 1}]', "'destinationTable' is missing"),
        ('[{"destinationTable": "Nope"}]', "unknown destinationTable"),
        ('[{"destinationTable": "Transactions.project"}]', "needs a 'value'"),
        ('[{"destinationTable": "TransactionKeyValue", "value": 1}]', "needs a 'key'"),
        # Refused here, before anything is archived, on every database (before, each
        # failed at the last task after the files were archived: a surrogate with an
        # internal error, the others only on PostgreSQL; NaN was stored as "nan").
        ('[{"destinationTable": "Transactions.project", "value": NaN}]', "NaN is not a"),
        ('[{"destinationTable": "Transactions.project", "value": -Infinity}]', "Infinity"),
        ('[{"destinationTable": "Transactions.project", "value": "\\ud800"}]', "surrogate"),
        ('[{"destinationTable": "TransactionKeyValue", "key": "\\udc00", "value": 1}]', "lone"),
        ('[{"destinationTable": "TransactionKeyValue", "key": "k", "value": "a\\u0000"}]', "NUL"),
        ('[{"destinationTable": "TransactionKeyValue", "key": "a\\u0000", "value": 1}]', "control"),
        ('[{"destinationTable": "TransactionKeyValue", "key": "a\\nb", "value": 1}]', "control"),
        (
            json.dumps([{"destinationTable": "TransactionKeyValue", "key": "k" * 256, "value": 1}]),
            "longer than 255 characters",
        ),
        (
            json.dumps([{"destinationTable": "Transactions.project", "value": 10**300}]),
            "longer than 255 characters",
        ),
        (json.dumps([{"destinationTable": "Transactions." + "x" * 250, "value": 1}]), "longer"),
    ],
)
def test_metadata_refusals(doc: str, message: str) -> None:
    with pytest.raises(BundleError) as err:
        parse_metadata(doc)
    assert err.value.task == "load metadata"
    assert message in err.value.message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "../x"}, "without '/'"),
        ({"subdir": "../../etc"}, "escapes"),
        ({"subdir": "/abs"}, "absolute"),
        ({"size": -1}, "'size'"),
        ({"size": True}, "'size'"),
        ({"hashtype": "crc32"}, "'hashtype'"),
        ({"hashsum": "zz"}, "'hashsum'"),
        ({"hashsum": "a" * 39 + "\n"}, "'hashsum'"),  # $ matched before a final newline
        ({"name": "x.dftmp"}, "reserved"),
        ({"size": 2**63}, "'size'"),
        ({"mimetype": "m" * 256}, "longer than 255"),
        ({"mtime": "t" * 65}, "longer than 64"),
        ({"ctime": float("inf")}, "Infinity is not a number"),
        ({"mimetype": "text/plain\x00"}, "NUL"),
    ],
)
def test_file_entry_refusals(change: dict[str, object], message: str) -> None:
    entry = {**file_entry("f", b"x"), **change}
    with pytest.raises(BundleError) as err:
        parse_metadata(json.dumps([entry]))
    assert message in err.value.message


def test_a_decoded_document_is_held_to_the_same_rules() -> None:
    """/move hands over a document its JSON body already decoded (NaN included)."""
    for value, message in ((float("nan"), "nan is not a number"), ("\ud800", "surrogate")):
        with pytest.raises(BundleError, match=message):
            check_metadata([{"destinationTable": "Transactions.project", "value": value}])


def test_longest_values_are_accepted_and_the_limits_are_the_tables() -> None:
    doc = [
        {"destinationTable": "Transactions.project", "value": "p" * MAX_FIELD_CHARS},
        {"destinationTable": "TransactionKeyValue", "key": "k" * MAX_FIELD_CHARS, "value": "v"},
        {"destinationTable": "TransactionKeyValue", "key": "long", "value": "v" * 100_000},
        {**file_entry("f", b"x"), "mimetype": "m" * MAX_FIELD_CHARS, "mtime": "t" * 64},
    ]
    meta = parse_metadata(json.dumps(doc))
    assert meta.project == "p" * MAX_FIELD_CHARS and meta.files[0].mtime == "t" * 64
    columns = {
        MAX_FIELD_CHARS: [
            IngestTransactionRow.__table__.c.project,
            IngestTransactionRow.__table__.c.submitter,
            IngestTransactionRow.__table__.c.instrument,
            IngestKeyValueRow.__table__.c.key,
            IngestFileRow.__table__.c.mimetype,
        ],
        MAX_TIME_CHARS: [IngestFileRow.__table__.c.ctime, IngestFileRow.__table__.c.mtime],
    }
    for limit, cols in columns.items():
        assert [getattr(c.type, "length", None) for c in cols] == [limit] * len(cols)


def test_duplicate_files_and_fields() -> None:
    twice = [file_entry("a", b"x"), file_entry("a", b"x")]
    with pytest.raises(BundleError, match="listed twice"):
        parse_metadata(json.dumps(twice))
    project = {"destinationTable": "Transactions.project", "value": "p"}
    with pytest.raises(BundleError, match="given twice"):
        parse_metadata(json.dumps([project, project]))


def test_data_prefix_in_subdir_is_dropped() -> None:
    assert data_path("data/a/b", "f") == "a/b/f"
    assert data_path("a", "f") == "a/f"
    assert data_path("", "f") == "f"


def test_builtin_policy() -> None:
    meta = parse_metadata(json.dumps(metadata_for({"f": b"x"})))
    rules = IngestSettings(
        allowed_projects=["other"],
        required_fields=["Transactions.instrument", "Transactions.submitter"],
        required_keys=["Tag", "Missing"],
    )
    problems = builtin_problems(meta, rules)
    assert problems == [
        "project 'p1' is not allowed (allowed: other)",
        "key 'Missing' is required",
    ]
    assert builtin_problems(meta, IngestSettings()) == []


def _open(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "b.tar"
    p.write_bytes(data)
    open_bundle(p, max_members=100, on_progress=lambda a, b: None)


def test_reader_accepts_a_good_bundle(tmp_path: Path) -> None:
    p = tmp_path / "b.tar"
    p.write_bytes(make_bundle({"a/b": b"x" * 700, "c": b""}))
    bundle = open_bundle(p, max_members=100, on_progress=lambda a, b: None)
    assert set(bundle.files) == {"a/b", "c"}
    assert bundle.metadata is not None and not bundle.is_bag


def test_reader_refuses_too_many_members(tmp_path: Path) -> None:
    p = tmp_path / "b.tar"
    p.write_bytes(make_bundle({f"f{i}": b"" for i in range(5)}))
    with pytest.raises(BundleError, match="more than 3 members"):
        open_bundle(p, max_members=3, on_progress=lambda a, b: None)


def test_reader_refuses_a_member_name_that_is_not_utf8(tmp_path: Path) -> None:
    """Before: archived, then an internal error (UnicodeEncodeError) at the last task."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo()
        info.name = os.fsdecode(b"data/caf\xe9.txt")  # Latin-1 bytes, as tar stores them
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(BundleError, match="is not valid UTF-8") as err:
        _open(tmp_path, buf.getvalue())
    assert err.value.task == "open tar" and "caf\\udce9" in err.value.message


def test_reader_refuses_a_file_that_is_also_a_folder(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("data/a", "data/a/b"):
            info = tarfile.TarInfo(name)
            tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(BundleError, match="both a file and a folder"):
        _open(tmp_path, buf.getvalue())


@pytest.mark.parametrize("data", [b"", b"\0" * 10240, b"x" * 3000])
def test_reader_refuses_non_tars(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(BundleError) as err:
        _open(tmp_path, data)
    assert err.value.task == "open tar"


def test_reader_refuses_a_tar_cut_at_a_member_boundary(tmp_path: Path) -> None:
    whole = make_bundle({"a": b"x" * 512})
    # header (512) + data (512) of data/a, then metadata.txt: cut right after data/a.
    with pytest.raises(BundleError, match="truncated"):
        _open(tmp_path, whole[:1024])
