"""Publishing a dataset whose manifest cannot be made: the dataset says so (state
``failed`` with the reason) instead of staying ``computing`` while its job has ended."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dataferry.config import Settings
from dataferry.errors import InvalidRequest, NotFound, PermanentError
from tests.support.server import Server


def shown(server: Server, uid: str) -> dict[str, Any]:
    doc: dict[str, Any] = server.cli_json("dataset", "show", uid)
    return doc


def settled(server: Server, uid: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        doc = shown(server, uid)
        if doc["state"] != "computing":
            return doc
        time.sleep(0.2)
    raise AssertionError(f"dataset {uid} is still computing: {doc}")


def test_a_manifest_job_that_fails_fails_the_dataset_with_its_reason(
    server_factory: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    (data / "odd").mkdir(parents=True)
    (data / "odd" / "ok.txt").write_text("ok")
    os.mkfifo(data / "odd" / "pipe")
    srv: Server = server_factory("prov", env={"DATAFERRY_DATASETS__SITE_NAME": "fac"})
    srv.cli("endpoint", "add", "data", str(data))
    srv.cli("dataset", "publish", "fac.odd", "--from", "data:odd")
    doc = settled(srv, "fac.odd")
    # before: "computing" for ever (the job had failed), broadcast "still being prepared"
    assert doc["state"] == "failed", doc
    assert "'odd/pipe' on endpoint 'data' is neither a file nor a folder" in doc["error"], doc
    refused = srv.cli("dataset", "broadcast", "fac.odd", check=False)
    assert refused.returncode == 1 and "could not be prepared" in refused.stderr
    assert "neither a file nor a folder" in refused.stderr
    (data / "odd" / "pipe").unlink()
    srv.cli("dataset", "publish", "fac.odd", "--from", "data:odd")
    doc = settled(srv, "fac.odd")
    assert (doc["state"], doc["version"], doc["files"], doc["error"]) == ("ready", 2, 1, "")


@pytest.fixture
def provider(tmp_path: Path, database_url: str) -> Iterator[Any]:
    """A provider with no job executor of its own: its manifest jobs wait, queued."""
    from dataferry.app import build

    (tmp_path / "data" / "exp").mkdir(parents=True)
    (tmp_path / "data" / "exp" / "f.bin").write_bytes(b"x")
    settings = Settings(
        home=tmp_path / "prov",
        database_url=database_url,
        datasets={"site_name": "fac"},
        jobs={"workers": 0},
    )
    core = build(settings)
    core.endpoints.add("data", str(tmp_path / "data"))
    yield core
    core.stop()


def test_a_cancelled_manifest_job_leaves_the_dataset_failed(provider: Any) -> None:
    ds = provider.provider.publish("fac.exp", "data:exp")
    assert ds.state == "computing" and ds.job_id is not None
    provider.jobs.cancel(ds.job_id)
    for got in (provider.provider.get("fac.exp"), provider.provider.list()[0]):
        assert (got.state, got.error) == ("failed", "manifest job cancelled"), got
    with pytest.raises(PermanentError, match="could not be prepared: manifest job cancelled"):
        provider.provider.broadcast("fac.exp")


def test_publishing_a_path_that_does_not_exist_says_so(provider: Any, tmp_path: Path) -> None:
    """Before, a missing path was 'is not a folder' (422), as a file is."""
    with pytest.raises(NotFound) as caught:
        provider.provider.publish("fac.exp", "data:nope/exp")
    assert caught.value.message == "path 'nope/exp' does not exist on endpoint 'data'"
    with pytest.raises(InvalidRequest) as refused:
        provider.provider.publish("fac.exp", "data:exp/f.bin")
    assert refused.value.message == "'data:exp/f.bin' is not a folder on endpoint 'data'"
    assert provider.provider.list() == []
    assert sum(provider.jobs.counts().values()) == 0


def test_publish_of_a_missing_path_is_404_at_the_doors(server_factory: Any, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    srv: Server = server_factory("prov", env={"DATAFERRY_DATASETS__SITE_NAME": "fac"})
    srv.cli("endpoint", "add", "data", str(tmp_path / "data"))
    result = srv.cli("dataset", "publish", "fac.x", "--from", "data:missing", check=False)
    assert result.returncode == 1
    assert " ".join(result.stderr.split()) == (
        "error: path 'missing' does not exist on endpoint 'data' (HTTP 404)"
    )
    assert srv.cli_json("dataset", "list") == []
