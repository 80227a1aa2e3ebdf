"""A stopping process hands its running jobs back to the queue at once (the attempt
not counted), so another executor or the restarted one continues without waiting
for the lease to expire."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from dataferry.jobs.context import JobContext
from dataferry.jobs.executors.inline import InlineExecutor
from dataferry.jobs.registry import JobKind
from dataferry.jobs.states import JobState
from tests.support.jobs import wait_state
from tests.support.server import Server


def test_stopping_executor_hands_its_running_job_back(core: Any) -> None:
    runs: list[int] = []
    finish = threading.Event()

    def patient(ctx: JobContext) -> dict[str, Any]:
        runs.append(ctx.job.attempts)
        while not finish.is_set():
            ctx.progress(task="waiting", force=True)
            time.sleep(0.02)
        return {"runs": len(runs)}

    core.registry.register(JobKind("patient", patient, max_attempts=1))
    core.start()
    job = core.jobs.submit("patient", {})
    wait_state(core, job.id, {"running"})

    core.executor.stop()
    back = core.jobs.get(job.id)
    assert back.state is JobState.QUEUED  # at once, not after the lease
    assert back.attempts == 0 and back.lease_owner is None and back.error == ""
    assert core.jobs.attempts(job.id)[-1]["outcome"] == "interrupted"

    # Another executor takes it; with max_attempts=1 the interrupted run did not count.
    finish.set()
    other = InlineExecutor(core.job_store, core.runner, "other-node", 1, 30)
    other.start()
    try:
        done = wait_state(core, job.id, {"succeeded", "failed", "cancelled"})
    finally:
        other.stop()
    assert done.state is JobState.SUCCEEDED and done.attempts == 1
    assert done.result == {"runs": 2} and runs == [1, 1]


def test_a_stopped_server_hands_back_its_transfer_and_the_restart_finishes_it(
    server_factory: Any, tmp_path: Path
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    payload = bytes(range(256)) * (12 * 1024)  # 3 MiB
    (src / "slow.bin").write_bytes(payload)
    # 1 MB/s in 64 KiB blocks: a few seconds of copying, checked after each block.
    env = {
        "DATAFERRY_TRANSFER__BANDWIDTH_LIMIT": "1000000",
        "DATAFERRY_TRANSFER__CHUNK_SIZE": "65536",
    }
    server: Server = server_factory(env=env)
    with server.client() as c:
        c.add_endpoint("a", str(src))
        c.add_endpoint("b", str(dst))
        job_id = c.transfer("a:slow.bin", "b:slow.bin")["job_id"]
        server.wait_job(job_id, states=frozenset({"running"}))
    server.stop()  # SIGTERM: a graceful stop
    server.env.pop("DATAFERRY_TRANSFER__BANDWIDTH_LIMIT")
    server.start()
    with server.client() as c:
        detail = c.request("GET", f"/api/v1/jobs/{job_id}/detail")
        outcomes = [a["outcome"] for a in detail["attempt_history"]]
        assert outcomes[0] == "interrupted", outcomes  # handed back, not lease-expired
        done = server.wait_job(job_id)
    assert done["state"] == "succeeded" and done["attempts"] == 1
    assert (dst / "slow.bin").read_bytes() == payload
    assert not [p.name for p in dst.iterdir() if p.name != "slow.bin"]  # no temporaries
