"""Record replication benchmark: two real ``dataferry serve`` instances over HTTP.

    .venv/bin/python bench/replication.py      # (make bench runs it too)

1. Initial sync: instance A holds BENCH_RECORDS (100,000) records of about 1 KiB;
   B runs ``sync a`` (a replicate job: pull in batches, each applied with its
   checkpoint in one transaction) and we time it from submission to success.
   Reference, measured in the same run: a plain bulk insert of the same records
   (uuid + JSON text, executemany, one commit per 5,000) into B's database.
2. Incremental sync: A grows to BENCH_BIG (1,000,000) records, all synced to B;
   then 100 records change on A and we time B's next sync.

Targets (issue 5): initial sync >= 20,000 records/s on SQLite; incremental sync
under 1 second regardless of collection size.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, fresh, start_server
from cryptography.fernet import Fernet
from tests.support.server import Server

from dataferry.app import build
from dataferry.config import Settings

N = int(os.environ.get("BENCH_RECORDS", "100000"))
BIG = int(os.environ.get("BENCH_BIG", "1000000"))
CHANGES = 100
TOKENS = {"a": "bench-token-a-0123456789", "b": "bench-token-b-0123456789"}


def doc(i: int) -> dict[str, Any]:
    # about 1 KiB of JSON in ten fields
    return {f"field{j}": f"{i:08d}-{j}-" + "x" * 88 for j in range(10)} | {"i": i}


def load(home: Path, start: int, count: int) -> None:
    """Put records straight through the service (the server may be running)."""
    core = build(Settings(home=home, database_url=f"sqlite:///{home / 'dataferry.db'}"))
    try:
        for lo in range(start, start + count, 5000):
            hi = min(start + count, lo + 5000)
            core.records.put_many("bench", [(None, doc(i)) for i in range(lo, hi)])
    finally:
        core.stop()


def env(name: str) -> dict[str, str]:
    return {
        "DATAFERRY_TOKENS": json.dumps([TOKENS[name]]),
        "DATAFERRY_TOKEN": TOKENS[name],
        "DATAFERRY_RECORDS__SYNC_INTERVAL": "0",
        # production lease (the test servers' 3 s is too short for a loaded machine)
        "DATAFERRY_JOBS__LEASE_SECONDS": "30",
    }


def timed_sync(srv: Any) -> tuple[float, dict[str, Any]]:
    with srv.client() as c:
        start = time.perf_counter()
        job = c.request("POST", "/api/v1/peers/a/sync", json={})
        doc = c.wait(job["job_id"])  # a long poll: answered when the job ends
        seconds = time.perf_counter() - start
        if doc["state"] != "succeeded":
            raise SystemExit(f"sync failed: {doc}")
        detail: dict[str, Any] = c.request("GET", f"/api/v1/jobs/{job['job_id']}/detail")
    return seconds, detail["result"]


def reference_insert(db: Path, count: int) -> float:
    rows = [(str(uuid.uuid4()), json.dumps(doc(i))) for i in range(count)]
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("DROP TABLE IF EXISTS bench_reference")
    conn.execute("CREATE TABLE bench_reference (uuid TEXT PRIMARY KEY, data TEXT NOT NULL)")
    start = time.perf_counter()
    for lo in range(0, count, 5000):
        conn.executemany("INSERT INTO bench_reference VALUES (?, ?)", rows[lo : lo + 5000])
        conn.commit()
    seconds = time.perf_counter() - start
    conn.execute("DROP TABLE bench_reference")
    conn.commit()
    conn.close()
    return seconds


def main() -> None:
    base = fresh(WORK / "replication")
    home_a, home_b = base / "a", base / "b"
    home_a.mkdir()
    print(f"loading {N:,} records of ~1 KiB into A ...", flush=True)
    load(home_a, 0, N)
    # A's data is already there: start its server on it (start_server would wipe it)
    a = Server(
        home_a,
        f"sqlite:///{home_a / 'dataferry.db'}",
        {"DATAFERRY_SECRET_KEY": Fernet.generate_key().decode(), **env("a")},
    ).start()
    b = start_server(home_b, env("b"))
    try:
        b.cli("peer", "add", "a", a.url, "--token", TOKENS["a"])
        seconds, result = timed_sync(b)
        assert result["pulled"] == N, result
        rate = N / seconds
        ref_seconds = reference_insert(home_b / "dataferry.db", N)
        ref_rate = N / ref_seconds
        print(f"initial sync     {N:>9,} records {seconds:8.2f} s {rate:10,.0f} records/s")
        print(f"reference insert {N:>9,} records {ref_seconds:8.2f} s {ref_rate:10,.0f} records/s")
        print(
            f"ratio (sync / plain bulk insert): {rate / ref_rate:.2f}x; target >= 20,000/s: "
            f"{'met' if rate >= 20000 else 'MISSED'}"
        )

        if BIG > N:
            print(f"growing A to {BIG:,} records and syncing B ...", flush=True)
            load(home_a, N, BIG - N)
            grow_seconds, grow = timed_sync(b)
            print(
                f"catch-up sync    {grow['pulled']:>9,} records {grow_seconds:8.2f} s "
                f"{grow['pulled'] / grow_seconds:10,.0f} records/s"
            )
        total = max(BIG, N)
        with a.client() as c:
            page = c.request(
                "GET",
                "/api/v1/collections/bench/records",
                params={"limit": CHANGES, "offset": total // 2},
            )
            for r in page["records"]:
                c.request(
                    "PUT",
                    f"/api/v1/collections/bench/records/{r['uuid']}",
                    json={**r["data"], "field0": "changed"},
                )
        inc_seconds, inc = timed_sync(b)
        assert inc["pulled"] == CHANGES, inc
        print(
            f"incremental sync {CHANGES:>9,} changes in a collection of {total:,}: "
            f"{inc_seconds:.3f} s; target < 1 s: {'met' if inc_seconds < 1 else 'MISSED'}"
        )
    finally:
        a.kill()
        b.kill()


if __name__ == "__main__":
    main()
