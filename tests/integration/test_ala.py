"""ALA occurrence pulls (``pullOccurrenceFromALA`` / ``checkALAJobStatus``) against
a fake Atlas of Living Australia on loopback: success, transient failure then
success, permanent failures with their reason."""

from __future__ import annotations

import json
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_ala import CSV, FakeALA
from tests.support.server import Server

LSID = "urn:lsid:biodiversity.org.au:afd.taxon:0c7e4d2a-5b8a-4a3b-b0a4-1a2b3c4d5e6f"
SAFE = "urn_lsid_biodiversity.org.au_afd.taxon_0c7e4d2a-5b8a-4a3b-b0a4-1a2b3c4d5e6f"


@pytest.fixture
def ala_server(
    server_factory: Any, tmp_path: Path
) -> Iterator[Callable[[str], tuple[Server, FakeALA, Path]]]:
    fakes: list[FakeALA] = []

    def make(mode: str) -> tuple[Server, FakeALA, Path]:
        fake = FakeALA(mode).start()
        fakes.append(fake)
        out = tmp_path / "species"
        out.mkdir(exist_ok=True)
        env = {**fake.env, "DATAFERRY_ALA__DESTINATION": "species:ala"}
        server: Server = server_factory("a", env=env)
        server.cli("endpoint", "add", "species", str(out))
        return server, fake, out

    yield make
    for fake in fakes:
        fake.stop()


def follow(p: Any, job_id: int) -> tuple[dict[str, Any], list[str]]:
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        doc: dict[str, Any] = p.checkALAJobStatus(job_id)
        if not seen or seen[-1] != doc["status"]:
            seen.append(doc["status"])
        if doc["status"] in ("COMPLETED", "FAILED"):
            return doc, seen
        time.sleep(0.05)
    raise AssertionError(f"ALA job {job_id} did not finish: {seen}")


def test_ala_pull_success(ala_server: Any) -> None:
    server, fake, out = ala_server("ok")
    p: Any = xmlrpc.client.ServerProxy(server.url + "/data_mover")
    doc = p.pullOccurrenceFromALA(LSID)
    assert doc["status"] == "PENDING"
    final, seen = follow(p, doc["id"])
    assert final == {"id": doc["id"], "status": "COMPLETED"}
    assert set(seen) <= {"PENDING", "DOWNLOADING", "COMPLETED"}
    assert (out / "ala" / SAFE / "occurrences.csv").read_text() == CSV
    meta = json.loads((out / "ala" / SAFE / "metadata.json").read_text())
    assert meta["taxonConcept"]["guid"] == LSID
    asked = next(r for r in fake.requests if r.startswith("/ws/webportal/occurrences.gz"))
    assert "q=lsid%3A" in asked and "geospatial_kosher%3Atrue" in asked
    assert "fl=raw_taxon_name%2Clongitude%2Clatitude" in asked
    # an ALA job id is not a move id, and vice versa
    assert p.check_move_status(doc["id"])["status"] == "REJECTED"


def test_ala_transient_failures_are_retried(ala_server: Any) -> None:
    server, _fake, out = ala_server("flaky")
    p: Any = xmlrpc.client.ServerProxy(server.url + "/data_mover")
    doc = p.pullOccurrenceFromALA(LSID)
    final, _ = follow(p, doc["id"])
    assert final["status"] == "COMPLETED", final
    assert server.wait_job(doc["id"])["attempts"] == 3  # failed twice, then answered
    assert (out / "ala" / SAFE / "occurrences.csv").read_text() == CSV


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("garbage", "not gzip"), ("missing", "not found")],
)
def test_ala_permanent_failure_has_a_reason(ala_server: Any, mode: str, reason: str) -> None:
    server, _, out = ala_server(mode)
    p: Any = xmlrpc.client.ServerProxy(server.url + "/data_mover")
    doc = p.pullOccurrenceFromALA(LSID)
    final, _ = follow(p, doc["id"])
    assert final["status"] == "FAILED" and reason in final["reason"], final
    assert server.wait_job(doc["id"])["attempts"] == 1
    leftovers = [p.name for p in out.rglob("*") if p.is_file()]
    assert leftovers == []  # nothing half-written stays behind


def test_ala_rejections(ala_server: Any) -> None:
    server, _, _ = ala_server("ok")
    p: Any = xmlrpc.client.ServerProxy(server.url + "/data_mover")
    assert p.pullOccurrenceFromALA("")["reason"] == "missing lsid"
    assert p.pullOccurrenceFromALA("bad lsid <>")["status"] == "REJECTED"
    # a long one is refused for its length, quoted in part (it was quoted whole, and
    # said to have characters an LSID cannot have)
    reason = p.pullOccurrenceFromALA("a" * 5000)["reason"]
    assert "longer than 300 characters" in reason and len(reason) < 120, reason
    assert "a" * 300 not in p.pullOccurrenceFromALA("a" * 1000 + "<")["reason"]
    assert p.checkALAJobStatus(31337) == {"status": "REJECTED", "reason": "Job does not exist"}
