"""CPU time of the two servers per dataset delivery (the bench/datasets.py case).

    .venv/bin/python bench/datasets_cpu.py [RUNS]

On a shared machine wall-clock time says little; the CPU-seconds each server spends
on one delivery (utime + stime from /proc/PID/stat) move much less with the load.
Each run delivers the 1 GiB, 2,000-file dataset once and prints the provider's and
the consumer's CPU during the delivery job ("transfer") and from the announcement
to ``complete`` ("workflow", adding the consumer's integrity check). The first run
of a fresh server includes its warm-up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import datasets as case
from common import WORK, fresh, start_server

TICK = os.sysconf("SC_CLK_TCK")


def cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU-seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def used(before: tuple[float, float], after: tuple[float, float]) -> str:
    u, s = after[0] - before[0], after[1] - before[1]
    return f"{u + s:.2f} (user {u:.2f}, sys {s:.2f})"


def deliver(p: Any, c: Any, uid: str, pp: int, cp: int) -> str:
    """Publish ``uid``, deliver it once; the times and CPU of both servers."""
    job = p.publish(uid, "data:exp")["job_id"]
    p.wait(job)
    subprocess.run(["sync"], check=True)
    time.sleep(1)
    p0, c0 = cpu(pp), cpu(cp)
    start = time.perf_counter()
    p.broadcast(uid)
    tid = case.wait(lambda: c.synced_dataset(uid)["transfer_id"])
    t0, p1, c1 = time.perf_counter(), cpu(pp), cpu(cp)
    p.wait(tid)
    t1, p2, c2 = time.perf_counter(), cpu(pp), cpu(cp)
    doc = case.wait(
        lambda: (d := c.synced_dataset(uid))["state"] in ("complete", "failed_permanent") and d
    )
    t2, p3, c3 = time.perf_counter(), cpu(pp), cpu(cp)
    if doc["state"] != "complete":
        raise SystemExit(f"delivery failed: {doc}")
    both = (p2[0] - p1[0] + c2[0] - c1[0], p2[1] - p1[1] + c2[1] - c1[1])
    return (
        f"transfer {t1 - t0:.2f} s, CPU provider {used(p1, p2)}, consumer {used(c1, c2)}, "
        f"both {used((0, 0), both)}; workflow {t2 - start:.2f} s, CPU provider "
        f"{used(p0, p3)}, consumer {used(c0, c3)}; load {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    base = WORK / "datasets"
    case.make_source(base / "facility" / "exp")
    inbox = fresh(base / "inbox")
    provider = start_server(
        base / "home-fac", {**case.FAST, "DATAFERRY_DATASETS__SITE_NAME": "fac"}
    )
    consumer = start_server(
        base / "home-home", {**case.FAST, "DATAFERRY_DATASETS__SITE_NAME": "home"}
    )
    assert provider.proc is not None and consumer.proc is not None
    pp, cp = provider.proc.pid, consumer.proc.pid
    p, c = provider.client(), consumer.client()
    try:
        p.add_endpoint("data", str(base / "facility"))
        c.add_endpoint("inbox", str(inbox), {"peer_write": "fac"})
        p.add_site("home", consumer.url, case.TOKEN, "consumer", "inbox:from-fac")
        c.add_site("fac", provider.url, case.TOKEN, "provider")
        for i in range(runs):
            shutil.rmtree(inbox, ignore_errors=True)
            inbox.mkdir()
            print(
                f"run {i}: {deliver(p, c, f'fac.cpu-{i}-{int(time.time())}', pp, cp)}", flush=True
            )
    finally:
        p.close()
        c.close()
        provider.kill()
        consumer.kill()


if __name__ == "__main__":
    main()
