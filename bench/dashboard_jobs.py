"""Dashboard at scale: the jobs pages with 100,000 jobs in the database.

    make bench            # or: .venv/bin/python bench/dashboard_jobs.py

Times each page as a browser without JavaScript asks for it (median of repeated
requests against a real ``dataferry serve`` on SQLite) and prints it as a ratio
of ``/healthz`` measured in the same run (one trivial query over the same HTTP
stack). Target (issue 9): paging stays fast at 100,000+ jobs: the oldest page
costs about what the newest does, and a live-update poll is a few milliseconds.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, start_server

JOBS = int(os.environ.get("BENCH_JOBS", "100000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "30"))


def median_ms(client: httpx.Client, path: str) -> float:
    client.get(path).raise_for_status()  # warm
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        client.get(path).raise_for_status()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    from tests.support.jobs import insert_jobs  # importable once common set the path

    home = WORK / "dashboard"
    server = start_server(home, {"DATAFERRY_JOBS__WORKERS": "0"})
    try:
        start = time.perf_counter()
        insert_jobs(f"sqlite:///{home / 'dataferry.db'}", JOBS)
        print(f"inserted {JOBS} jobs in {time.perf_counter() - start:.1f} s")
        cases = [
            ("reference: /healthz", "/healthz"),
            ("jobs page, newest", "/"),
            ("jobs page, middle (keyset)", f"/?before={JOBS // 2}"),
            ("jobs page, oldest (keyset)", "/?after=0"),
            ("jobs page, state+kind filter", "/?state=failed&kind=ingest"),
            ("job page", f"/jobs/{JOBS // 2}"),
            ("live poll: API 50 jobs", "/api/v1/jobs?limit=50"),
            ("API oldest by offset", f"/api/v1/jobs?limit=50&offset={JOBS - 50}"),
        ]
        with httpx.Client(base_url=server.url, headers={"Accept": "text/html"}) as c:
            results = [(name, median_ms(c, path)) for name, path in cases]
        reference = results[0][1]
        print(f"{'case':<32} {'ms (median)':>12}  ratio to /healthz")
        for name, ms in results:
            print(f"{name:<32} {ms:12.2f}  {ms / reference:.1f}x")
    finally:
        server.kill()


if __name__ == "__main__":
    main()
