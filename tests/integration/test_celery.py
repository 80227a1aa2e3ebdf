"""Scale-out on Celery with real ``dataferry worker`` / ``beat`` processes and a real
broker: a worker killed mid-transfer, a broker restart, many jobs on two workers,
RabbitMQ. These run in the Celery pass only (``make test-celery``)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.celery import RABBITMQ_URL, WorkerGroup, celery_env, require_broker
from tests.support.server import Server
from tests.support.trees import hash_tree, temporaries

pytestmark = pytest.mark.celery_only

MiB = 1024 * 1024


def wait_for(predicate: Any, timeout: float = 60, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


def attempt_history(server: Server, job_id: int) -> list[dict[str, Any]]:
    with server.client() as c:
        history: list[dict[str, Any]] = c.request("GET", f"/api/v1/jobs/{job_id}/detail")[
            "attempt_history"
        ]
        return history


@pytest.fixture
def workers(tmp_path: Path) -> Any:
    groups: list[WorkerGroup] = []

    def make(server: Server) -> WorkerGroup:
        group = WorkerGroup(tmp_path / "home-workers", server.env)
        groups.append(group)
        return group

    yield make
    for g in groups:
        g.stop()


def test_worker_killed_mid_transfer_another_worker_finishes(
    server_factory: Any, workers: Any, tmp_path: Path
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "big").mkdir(parents=True)
    dst.mkdir()
    chunk = os.urandom(4 * MiB)
    for i in range(48):
        (src / "big" / f"part-{i:03d}.bin").write_bytes(i.to_bytes(4, "big") + chunk)
    (src / "big" / "part-015-large.bin").write_bytes(os.urandom(24 * MiB))
    expected = hash_tree(src / "big")
    env = {"DATAFERRY_TRANSFER__CONCURRENCY": "1", "DATAFERRY_TRANSFER__CHUNK_SIZE": "262144"}
    server: Server = server_factory("api", env=env, workers=False)
    group: WorkerGroup = workers(server)
    group.beat()
    pair = group.workers(["--queues", "transfers", "-c", "1"], ["--queues", "transfers", "-c", "1"])
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))
    job_id = server.cli_json("transfer", "src:big", "dst:big")["job_id"]

    with server.client() as c:

        def some_done() -> list[dict[str, object]]:
            done = [f for f in c.job_files(job_id) if f["state"] == "done"]
            return done if len(done) >= 3 else []

        wait_for(some_done)
        # Who runs what: /metrics, the job document and `jobs --json` name the worker.
        metrics = httpx.get(f"{server.url}/metrics").text
        running = c.job(job_id)
        first, second = sorted(pair, key=lambda w: f":{w.pid}/" not in running["worker"])
        first_pid = first.pid
        first.kill(signal.SIGKILL)  # no cleanup, no goodbye; its message stays unacknowledged
        at_kill = c.job(job_id)
    assert at_kill["state"] == "running", f"the transfer ended before the kill: {at_kill}"
    node = f":{first_pid}/"
    assert running["state"] == "running" and node in running["worker"], running
    assert f'dataferry_job_running{{job_id="{job_id}",kind="transfer",worker="' in metrics
    assert node in metrics
    listed = {d["job_id"]: d for d in server.cli_json("jobs")}
    assert node in listed[job_id]["worker"]

    doc = server.wait_job(job_id, timeout=180)
    assert doc["state"] == "succeeded", doc
    assert f":{second.pid}/" in doc["worker"]
    assert doc["attempts"] == 2, doc
    assert [h["outcome"] for h in attempt_history(server, job_id)] == [
        "lease_expired",
        "succeeded",
    ]
    assert hash_tree(dst / "big") == expected
    assert temporaries(dst) == []


def test_transfer_on_rabbitmq(server_factory: Any, workers: Any, tmp_path: Path) -> None:
    require_broker(RABBITMQ_URL)
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d").mkdir(parents=True)
    dst.mkdir()
    for i in range(5):
        (src / "d" / f"f{i}").write_bytes(os.urandom(10_000))
    env = celery_env(RABBITMQ_URL)
    server: Server = server_factory("api", env=env, workers=False)
    group: WorkerGroup = workers(server)
    group.worker("--queues", "transfers", "--concurrency", "2", "--beat")
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))
    doc = server.cli_json("transfer", "src:d", "dst:copy", "--wait")
    assert doc["state"] == "succeeded" and doc["attempts"] == 1, doc
    assert hash_tree(dst / "copy") == hash_tree(src / "d")
    _purge_rabbitmq(env["DATAFERRY_CELERY__QUEUE_PREFIX"])


def _purge_rabbitmq(prefix: str) -> None:
    from kombu import Connection

    with Connection(RABBITMQ_URL) as conn:
        channel = conn.default_channel
        for name in ("transfers", "tick", "default"):
            try:
                channel.queue_delete(f"{prefix}.{name}")
            except Exception:
                channel = conn.channel()
