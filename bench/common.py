"""Shared benchmark helpers: a real server, timing, and a results table."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.server import Server  # noqa: E402

WORK = Path(os.environ.get("DATAFERRY_BENCH_DIR", ROOT / ".bench"))


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def timed(
    fn: Callable[[], object], repeat: int = 2, before: Callable[[], object] | None = None
) -> float:
    """Best wall time of ``repeat`` runs; ``before`` resets state (untimed) and the page
    cache is flushed of dirty data so one run's write-back does not slow the next."""
    best = float("inf")
    for _ in range(repeat):
        if before is not None:
            before()
        subprocess.run(["sync"], check=True)
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def start_server(home: Path, env: dict[str, str] | None = None) -> Server:
    from cryptography.fernet import Fernet

    fresh(home)
    srv = Server(
        home,
        f"sqlite:///{home / 'dataferry.db'}",
        {"DATAFERRY_SECRET_KEY": Fernet.generate_key().decode(), **(env or {})},
    )
    return srv.start()


def report(rows: list[tuple[str, str, float, float, str]]) -> None:
    width = max([12, *(len(row[1]) for row in rows)])
    print(f"{'case':<28} {'tool':<{width}} {'seconds':>8} {'MB/s':>9}  ratio")
    for case, tool, seconds, mbytes, ratio in rows:
        print(f"{case:<28} {tool:<{width}} {seconds:8.2f} {mbytes / seconds:9.1f}  {ratio}")
