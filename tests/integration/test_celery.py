"""Scale-out on Celery with real ``dataferry worker`` / ``beat`` processes and a real
broker: a worker killed mid-transfer, a broker restart, many jobs on two workers,
RabbitMQ. These run in the Celery pass only (``make test-celery``)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.celery import (
    RABBITMQ_URL,
    PrivateRedis,
    Worker,
    WorkerGroup,
    celery_env,
    require_broker,
)
from tests.support.server import Server
from tests.support.trees import hash_tree, temporaries
from tests.support.waiting import wait_for

pytestmark = pytest.mark.celery_only

MiB = 1024 * 1024


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


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of the test's own, which the test may stop and start again."""
    redis = PrivateRedis(tmp_path / "redis").start()
    yield redis
    redis.stop()


def transfer_on_two_workers(
    server_factory: Any, workers: Any, tmp_path: Path, rate: int
) -> tuple[Server, list[Worker], int]:
    """``src/big`` (filled by the caller) copied to ``dst/big`` at ``rate`` bytes/s, one
    file at a time in 256 KiB blocks, by one of two workers on the transfers queue."""
    env = {
        "DATAFERRY_TRANSFER__CONCURRENCY": "1",
        "DATAFERRY_TRANSFER__CHUNK_SIZE": "262144",
        "DATAFERRY_TRANSFER__BANDWIDTH_LIMIT": str(rate),
    }
    server: Server = server_factory("api", env=env, workers=False)
    group: WorkerGroup = workers(server)
    group.beat()
    pair = group.workers(["--queues", "transfers", "-c", "1"], ["--queues", "transfers", "-c", "1"])
    server.cli("endpoint", "add", "src", str(tmp_path / "src"))
    server.cli("endpoint", "add", "dst", str(tmp_path / "dst"))
    job_id = server.cli_json("transfer", "src:big", "dst:big")["job_id"]
    return server, pair, job_id


def test_worker_killed_mid_transfer_another_worker_finishes(
    server_factory: Any, workers: Any, tmp_path: Path
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "big").mkdir(parents=True)
    dst.mkdir()
    chunk = os.urandom(4 * MiB)
    for i in range(15):
        (src / "big" / f"part-{i:03d}.bin").write_bytes(i.to_bytes(4, "big") + chunk)
    (src / "big" / "part-015-large.bin").write_bytes(os.urandom(24 * MiB))
    expected = hash_tree(src / "big")
    # 84 MiB at 6 MiB/s: three files in, about 12 s of copying remain while the test
    # looks who runs it and kills that worker, however fast the disk, however loaded the machine.
    server, pair, job_id = transfer_on_two_workers(server_factory, workers, tmp_path, 6 * MiB)

    with server.client() as c:

        def some_done() -> list[dict[str, object]]:
            done = [f for f in c.job_files(job_id) if f["state"] == "done"]
            return done if len(done) >= 3 else []

        wait_for(some_done)
        # Who runs what: /metrics, the job document and `jobs --json` name the worker.
        metrics = httpx.get(f"{server.url}/metrics").text
        running = c.job(job_id)
        listed = {d["job_id"]: d for d in server.cli_json("jobs")}
        first, second = sorted(pair, key=lambda w: f":{w.pid}/" not in running["worker"])
        first_pid = first.pid
        first.kill(signal.SIGKILL)  # no cleanup, no goodbye; its message stays unacknowledged
        at_kill = c.job(job_id)
    assert at_kill["state"] == "running", f"the transfer ended before the kill: {at_kill}"
    node = f":{first_pid}/"
    assert running["state"] == "running" and node in running["worker"], running
    assert f'dataferry_job_running{{job_id="{job_id}",kind="transfer",worker="' in metrics
    assert node in metrics
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


def test_worker_stopped_mid_transfer_hands_it_to_another_at_once(
    server_factory: Any, workers: Any, tmp_path: Path
) -> None:
    """A warm shutdown (SIGTERM) of the worker running a transfer: the job goes back
    to the queue at once (not counted as an attempt), is sent to the other worker,
    and the stopped worker does not wait for the job to end."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "big").mkdir(parents=True)
    dst.mkdir()
    for i in range(12):
        (src / "big" / f"part-{i:03d}.bin").write_bytes(os.urandom(4 * MiB))
    expected = hash_tree(src / "big")
    # 48 MiB at 4 MiB/s: about 12 s of copying, checked after every 256 KiB.
    server, pair, job_id = transfer_on_two_workers(server_factory, workers, tmp_path, 4 * MiB)
    with server.client() as c:
        wait_for(lambda: [f for f in c.job_files(job_id) if f["state"] == "done"])
        running = c.job(job_id)
        first, second = sorted(pair, key=lambda w: f":{w.pid}/" not in running["worker"])
        first_pid = first.pid
        first.kill(signal.SIGTERM)  # returns once the worker has exited
        at_stop = c.job(job_id)
    assert running["state"] == "running" and f":{first_pid}/" in running["worker"], running
    # Handed back before the worker exited, long before the copy could have ended.
    assert at_stop["state"] in ("queued", "running"), at_stop
    assert f":{first_pid}/" not in (at_stop["worker"] if at_stop["state"] == "running" else "")

    doc = server.wait_job(job_id, timeout=120)
    assert doc["state"] == "succeeded", doc
    assert f":{second.pid}/" in doc["worker"]
    assert doc["attempts"] == 1, doc  # the interrupted run is not counted
    assert [h["outcome"] for h in attempt_history(server, job_id)] == [
        "interrupted",
        "succeeded",
    ]
    assert hash_tree(dst / "big") == expected
    assert temporaries(dst) == []


def ran_once_each(database_url: str, job_ids: list[int]) -> dict[int, int]:
    """Runs per job, counted in the attempts ledger (each run starts with one claim)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT job_id, count(*) FROM job_attempts GROUP BY job_id")
            ).all()
    finally:
        engine.dispose()
    counts = {int(j): int(n) for j, n in rows}
    return {j: counts.get(j, 0) for j in job_ids}


def test_broker_stopped_and_started_again_queued_jobs_finish_once(
    server_factory: Any, workers: Any, broker: PrivateRedis, tmp_path: Path, database_url: str
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    for i in range(30):
        (src / f"f{i}").write_bytes(os.urandom(200_000))
    server: Server = server_factory("api", env=celery_env(broker.url), workers=False)
    group: WorkerGroup = workers(server)
    group.beat()
    worker = group.worker("--queues", "transfers", "--concurrency", "2", "--log-level", "info")
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))
    with server.client() as c:
        ids = [c.transfer(f"src:f{i}", f"dst:out/f{i}")["job_id"] for i in range(20)]
        wait_for(lambda: c.jobs(state="succeeded", limit=1)["total"] >= 3)
        broker.stop()  # messages queued in the broker are lost
        # Submitting still works while the broker is down: the rows are queued.
        ids += [c.transfer(f"src:f{i}", f"dst:out/f{i}")["job_id"] for i in range(20, 30)]
        assert {c.job(i)["state"] for i in ids[20:]} == {"queued"}
        time.sleep(1)
        broker.start()
        docs = [server.wait_job(i, timeout=180) for i in ids]
    assert {d["state"] for d in docs} == {"succeeded"}, (docs, worker.text()[-4000:])
    assert {d["attempts"] for d in docs} == {1}
    assert set(ran_once_each(database_url, ids).values()) == {1}
    assert hash_tree(dst / "out") == hash_tree(src)
    assert temporaries(dst) == []


# Run by the worker of the next test in place of ``python -m dataferry``: the same
# command, with Celery's handling of a lost broker connection failing the way kombu
# 5.7's Redis transport sometimes makes it fail (an AttributeError while it closes
# the dropped connection), which stops the worker with "Unrecoverable error".
CRASH_ON_CONNECTION_LOSS = """
from celery.worker.consumer.consumer import Consumer

def broken(self, exc):
    raise AttributeError("injected: 'NoneType' object has no attribute 'hostname'")

Consumer.on_connection_error_after_connected = broken
from dataferry.cli.main import main
main()
"""


def test_worker_that_stops_on_an_error_starts_again_and_runs_jobs(
    server_factory: Any, workers: Any, broker: PrivateRedis, tmp_path: Path
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "before").write_bytes(os.urandom(50_000))
    (src / "after").write_bytes(os.urandom(50_000))
    server: Server = server_factory("api", env=celery_env(broker.url), workers=False)
    group: WorkerGroup = workers(server)
    group.beat()
    worker = Worker(
        group.home,
        group.env,
        ["worker", "--queues", "transfers", "-c", "2", "--log-level", "info"],
        python=["-c", CRASH_ON_CONNECTION_LOSS],
    )
    group.started.append(worker.start())
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))
    first = server.cli_json("transfer", "src:before", "dst:before", "--wait")
    assert first["state"] == "succeeded", first
    pid = worker.pid

    broker.stop()
    wait_for(lambda: "Unrecoverable error" in worker.text(), timeout=60)
    broker.start()
    # The same process (exec'd again, so without the injected fault) is ready again.
    wait_for(lambda: worker.text().count(" ready: ") == 2, timeout=120)
    assert worker.proc is not None and worker.proc.poll() is None
    log = worker.text()
    assert "starting it again" in log, log[-3000:]
    assert log.count(f":{pid} ready: ") == 2, log[-3000:]

    second = server.cli_json("transfer", "src:after", "dst:after", "--wait")
    assert second["state"] == "succeeded" and f":{pid}/" in second["worker"], second
    assert (dst / "after").read_bytes() == (src / "after").read_bytes()
    # Asked to stop, it stops (and is not started again).
    assert worker.kill(signal.SIGTERM, timeout=60) == 0


def test_500_jobs_over_rest_on_two_workers_each_run_once(
    server_factory: Any, workers: Any, tmp_path: Path, database_url: str
) -> None:
    n = 500
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    for i in range(n):
        (src / f"f{i}").write_bytes(f"job {i}\n".encode())
    server: Server = server_factory("api", workers=False)
    group: WorkerGroup = workers(server)
    two = group.workers(
        ["--queues", "transfers", "-c", "4", "--beat"], ["-Q", "transfers", "-c", "4"]
    )
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))

    def submit(i: int) -> int:
        with server.client() as c:
            job_id: int = c.transfer(f"src:f{i}", f"dst:out/f{i}")["job_id"]
            return job_id

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(submit, range(n)))
    assert len(set(ids)) == n
    with server.client() as c:
        wait_for(lambda: c.jobs(state="succeeded", limit=1)["total"] == n, timeout=600, every=0.5)
        assert c.jobs(limit=1)["total"] == n
        nodes = {str(c.job(i)["worker"]).split("/")[0] for i in ids[::10]}
    # Side effects: every file arrived once with its content; the ledger shows one run each.
    out = dst / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(f"f{i}" for i in range(n))
    assert all((out / f"f{i}").read_bytes() == f"job {i}\n".encode() for i in range(n))
    assert set(ran_once_each(database_url, ids).values()) == {1}
    pids = {f":{w.pid}" for w in two}  # node names are host:pid
    assert all(any(node.endswith(p) for p in pids) for node in nodes), (nodes, pids)
    assert len(nodes) == 2, nodes  # both workers took part
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
    from kombu.connection import Connection

    with Connection(RABBITMQ_URL) as conn:  # type: ignore[no-untyped-call]
        channel = conn.default_channel
        for name in ("transfers", "tick", "default"):
            try:
                channel.queue_delete(f"{prefix}.{name}")
            except Exception:
                channel = conn.channel()


def test_a_flood_of_one_queue_does_not_starve_another(core: Any) -> None:
    """One Celery worker per queue (what `dataferry worker` runs): while the bulk
    queue's only thread is busy and more bulk jobs wait, an interactive job runs.
    The interactive worker is a process of its own, as in production."""
    import multiprocessing
    import threading

    from dataferry.jobs.registry import JobKind
    from tests.support.celery import embedded_workers, quick_kind_worker

    release = threading.Event()

    def slow(ctx: Any) -> None:
        release.wait(60)

    core.registry.register(JobKind("slow", slow, queue="bulk"))
    core.registry.register(JobKind("quick", lambda ctx: {"ok": True}, queue="interactive"))
    core.use_celery()
    spawn = multiprocessing.get_context("spawn")
    ready, stop = spawn.Event(), spawn.Event()
    other = spawn.Process(
        target=quick_kind_worker, args=(core.settings, "interactive", ready, stop)
    )
    other.start()
    try:
        assert ready.wait(120), "the interactive worker did not start"
        with embedded_workers(core, ["bulk"], concurrency=1):
            try:  # released before the worker stops, or it waits for the slow jobs
                flood = [core.jobs.submit("slow", {}).id for _ in range(6)]
                wait_for(lambda: core.jobs.get(flood[0]).state.value == "running")
                quick = core.jobs.submit("quick", {})
                wait_for(lambda: core.jobs.get(quick.id).state.value == "succeeded", timeout=30)
                states = [core.jobs.get(i).state.value for i in flood]
                assert states.count("queued") == 5, states  # the flood still waits
                release.set()
                wait_for(
                    lambda: all(core.jobs.get(i).state.value == "succeeded" for i in flood),
                    timeout=60,
                )
            finally:
                release.set()
    finally:
        stop.set()
        other.join(60)
        if other.is_alive():
            other.kill()
