"""The deployment recipe as shipped: the systemd units' own command lines and the
sample configuration start an API, beat and a worker host (one Celery worker per
job queue) on PostgreSQL and a real broker, and they run a transfer."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.celery import Worker, registered_queues
from tests.support.server import FAST_ENV
from tests.support.services import free_port

pytestmark = pytest.mark.celery_only

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
BINARY = "/opt/dataferry/bin/dataferry"
CONFIG = "/etc/dataferry/dataferry.toml"


def unit_commands(unit: str, key: str, instance: str = "") -> list[list[str]]:
    """``key=`` lines of a unit, as argv lists runnable here."""
    out = []
    for line in (DEPLOY / "systemd" / unit).read_text().splitlines():
        if line.startswith(f"{key}="):
            argv = shlex.split(line.split("=", 1)[1].replace("%i", instance))
            assert argv[0] == BINARY, line
            argv = [sys.executable, "-m", "dataferry", *argv[1:]]
            out.append([str(DEPLOY / "dataferry.toml") if a == CONFIG else a for a in argv])
    return out


def test_units_and_sample_config_run_a_transfer(
    tmp_path: Path, database_url: str, celery_broker: tuple[str, str]
) -> None:
    broker, prefix = celery_broker
    port = free_port()
    env = {
        **os.environ,
        **FAST_ENV,
        # The sample file names example hosts: point it at this machine's services.
        "DATAFERRY_HOME": str(tmp_path / "home"),
        "DATAFERRY_DATABASE_URL": database_url,
        "DATAFERRY_BROKER_URL": broker,
        "DATAFERRY_CELERY__QUEUE_PREFIX": prefix,
        "DATAFERRY_HOST": "127.0.0.1",
        "DATAFERRY_PORT": str(port),
        "DATAFERRY_URL": f"http://127.0.0.1:{port}",
        "DATAFERRY_TOKEN": "change-me",
    }
    env.pop("DATAFERRY_CONFIG", None)
    for pre in unit_commands("dataferry-api.service", "ExecStartPre"):
        subprocess.run(pre, env=env, check=True, capture_output=True, timeout=120)
    started: list[Worker] = []

    def run(argv: list[str], ready: str, name: str) -> Worker:
        w = Worker(tmp_path, env, argv[3:], name=name)
        w.launch()
        started.append(w)
        return w.wait_ready(ready)

    try:
        (api,) = unit_commands("dataferry-api.service", "ExecStart")
        run(api, "serving on", "api")
        (beat,) = unit_commands("dataferry-beat.service", "ExecStart")
        run(beat, "dataferry beat ", "beat")
        (host,) = unit_commands("dataferry-worker.service", "ExecStart")
        workers = Worker(tmp_path, env, host[3:], name="workers").launch()
        started.append(workers)
        queues = registered_queues(tmp_path / "queues")
        deadline = time.monotonic() + 90
        while workers.text().count(" ready: ") < len(queues):  # one process per queue
            assert workers.proc is not None and workers.proc.poll() is None, workers.text()
            assert time.monotonic() < deadline, workers.text()
            time.sleep(0.1)
        pids = [int(p) for p in re.findall(r"dataferry worker \S+:(\d+) ready", workers.text())]
        assert len(pids) == len(queues) >= 2
        (one,) = unit_commands("dataferry-worker@.service", "ExecStart", "transfers")
        run(one, " ready: queues transfers ", "worker-transfers")

        src, dst = tmp_path / "src", tmp_path / "dst"
        (src / "d").mkdir(parents=True)
        dst.mkdir()
        for i in range(10):
            (src / "d" / f"f{i}").write_bytes(os.urandom(50_000))
        cfg = ["--config", str(DEPLOY / "dataferry.toml")]

        def cli(*args: str) -> Any:
            import json

            done = subprocess.run(
                [sys.executable, "-m", "dataferry", *cfg, *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout) if "--json" in args else done.stdout

        cli("endpoint", "add", "src", str(src))
        cli("endpoint", "add", "dst", str(dst))
        doc = cli("transfer", "src:d", "dst:d", "--wait", "--json")
        assert doc["state"] == "succeeded" and doc["files_done"] == 10, doc
        assert doc["worker"]

        # A worker host stops cleanly on SIGTERM, and so do its per-queue processes.
        assert workers.kill(signal.SIGTERM, timeout=60) == 0
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        for w in reversed(started):
            w.kill(signal.SIGTERM, timeout=20)
