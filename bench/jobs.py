"""Job throughput: many no-op-sized transfer jobs over REST, inline executor vs Celery.

    .venv/bin/python bench/jobs.py            # BENCH_JOBS=2000 by default

Both runs use PostgreSQL (``BENCH_POSTGRES_URL``, default the test server; a scratch
database each) and the same thread budget: the inline executor with 8 threads in
``serve``; Celery with 2 ``dataferry worker`` processes of 4 threads on Redis
(``BENCH_BROKER_URL``) plus ``dataferry beat``. Each job copies one 16-byte file.
Prints jobs/second from the first submit until every job succeeded, REST submit
latency p50/p99 (8 concurrent clients), and Celery's throughput as a ratio of the
inline executor's measured in the same run.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, fresh
from tests.support.celery import WorkerGroup, celery_env, new_prefix, purge_prefix
from tests.support.databases import PostgresDatabases
from tests.support.server import Server

JOBS = int(os.environ.get("BENCH_JOBS", "2000"))
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/7")
CLIENTS = 8
# Production timings, not the tests' fast ones.
TIMINGS = {
    "DATAFERRY_JOBS__TICK_SECONDS": "2",
    "DATAFERRY_JOBS__LEASE_SECONDS": "30",
    "DATAFERRY_JOBS__PROGRESS_INTERVAL": "0.5",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(name: str, dbs: PostgresDatabases, src: Path, env: dict[str, str]) -> dict[str, float]:
    from cryptography.fernet import Fernet

    base = fresh(WORK / "jobs" / name)
    dst = fresh(base / "dst")
    extra = {"DATAFERRY_SECRET_KEY": Fernet.generate_key().decode(), **TIMINGS, **env}
    server = Server(base / "home", dbs.clone(), extra).start()
    group = WorkerGroup(base / "workers", server.env)
    try:
        if env.get("DATAFERRY_EXECUTOR") == "celery":
            group.beat()
            group.workers(["-Q", "transfers", "-c", "4"], ["-Q", "transfers", "-c", "4"])
        with server.client() as c:
            c.add_endpoint("src", str(src))
            c.add_endpoint("dst", str(dst))
        latencies: list[float] = []

        def submit(i: int) -> None:
            with server.client() as c:
                t = time.perf_counter()
                c.transfer(f"src:f{i}", f"dst:f{i}")
                latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(submit, range(JOBS)))
        with server.client() as c:
            while c.jobs(state="succeeded", limit=1)["total"] < JOBS:
                if c.jobs(state="failed", limit=1)["total"]:
                    raise RuntimeError(f"{name}: a job failed")
                time.sleep(0.2)
        elapsed = time.perf_counter() - start
        return {
            "seconds": elapsed,
            "jobs_per_s": JOBS / elapsed,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
        }
    finally:
        group.stop()
        server.kill()


def main() -> None:
    src = fresh(WORK / "jobs" / "src")
    for i in range(JOBS):
        (src / f"f{i}").write_bytes(b"sixteen bytes..\n")
    dbs = PostgresDatabases(POSTGRES)
    dbs.check()
    dbs.create_template()
    prefix = new_prefix()
    try:
        inline = run("inline", dbs, src, {"DATAFERRY_JOBS__WORKERS": "8"})
        celery = run(
            "celery",
            dbs,
            src,
            celery_env(BROKER, prefix) | {"DATAFERRY_CELERY__REDISPATCH_SECONDS": "60"},
        )
    finally:
        purge_prefix(BROKER, prefix)
        dbs.drop_all()
    print(f"{JOBS} transfer jobs of one 16-byte file, {CLIENTS} REST clients, PostgreSQL")
    print(f"{'executor':<28} {'seconds':>8} {'jobs/s':>8} {'submit p50 ms':>14} {'p99 ms':>8}")
    for label, r in (("inline (8 threads)", inline), ("celery (2 workers x 4, Redis)", celery)):
        print(
            f"{label:<28} {r['seconds']:8.1f} {r['jobs_per_s']:8.1f} "
            f"{r['p50_ms']:14.1f} {r['p99_ms']:8.1f}"
        )
    print(f"celery / inline throughput: {celery['jobs_per_s'] / inline['jobs_per_s']:.2f}x")


if __name__ == "__main__":
    main()
