"""``dataferry worker`` / ``beat`` refuse bad setups with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def dataferry(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DATAFERRY_")}
    full.update(DATAFERRY_HOME=str(tmp_path / "home"), **env)
    return subprocess.run(
        [sys.executable, "-m", "dataferry", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_worker_and_beat_need_the_celery_executor(tmp_path: Path) -> None:
    for cmd in ("worker", "beat"):
        done = dataferry(tmp_path, cmd)
        assert done.returncode == 1
        assert 'executor = "celery"' in done.stderr and "broker_url" in done.stderr


def test_celery_without_a_broker_url_is_a_configuration_error(tmp_path: Path) -> None:
    done = dataferry(tmp_path, "worker", DATAFERRY_EXECUTOR="celery")
    assert done.returncode == 1 and "needs broker_url" in done.stderr


def test_unknown_queue_is_refused_before_anything_starts(tmp_path: Path) -> None:
    done = dataferry(
        tmp_path,
        "worker",
        "--queues",
        "transfers,bogus",
        DATAFERRY_EXECUTOR="celery",
        DATAFERRY_BROKER_URL="redis://127.0.0.1:1/0",  # never contacted
    )
    assert done.returncode == 1
    assert "unknown queue(s) bogus" in done.stderr and "transfers" in done.stderr
