"""Pure ingest rules: the metadata format, the built-in policy, the tar reader's checks."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from dataferry.config import IngestSettings
from dataferry.ingest.bundle import open_bundle
from dataferry.ingest.metadata import data_path, parse_metadata
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
    ],
)
def test_file_entry_refusals(change: dict[str, object], message: str) -> None:
    entry = {**file_entry("f", b"x"), **change}
    with pytest.raises(BundleError) as err:
        parse_metadata(json.dumps([entry]))
    assert message in err.value.message


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
