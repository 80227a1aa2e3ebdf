"""Dataset delivery benchmark: a 1 GiB, 2,000-file dataset delivered between two local
dataferry instances through the peer file protocol, against ``rclone copy`` between
the same folders in the same run.

    make bench            # or: .venv/bin/python bench/datasets.py

Two rows for dataferry: the delivery transfer alone (the provider's delivery job from
its creation to the end of its last attempt, by the job's own times: read, SHA-256,
HTTP upload to a temporary name, sync, commit) and the whole workflow as the consumer
sees it (announce to ``complete``, which adds the consumer's own integrity check of
every file against the manifest and the tick/poll latency). Target (issue 8): at least
1x rclone. A second reference, ``rclone copy`` followed by ``sync -f`` on its
destination, has the durability the consumer gives every file it records.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, fresh, report, run, start_server, timed

MiB = 1024 * 1024
TOTAL = int(os.environ.get("BENCH_DATASET_MIB", "1024")) * MiB
FILES = int(os.environ.get("BENCH_DATASET_FILES", "2000"))
TOKEN = "bench-token-0123456789"
FAST = {
    "DATAFERRY_JOBS__TICK_SECONDS": "0.1",
    "DATAFERRY_DATASETS__POLL_SECONDS": "0.1",
    "DATAFERRY_JOBS__PROGRESS_INTERVAL": "0.5",
}


def make_source(folder: Path) -> None:
    size = TOTAL // FILES
    have = sorted(folder.rglob("*.bin")) if folder.exists() else []
    if len(have) != FILES or any(p.stat().st_size != size for p in have[:3]):
        fresh(folder)
        for i in range(FILES):
            d = folder / f"scan-{i % 20:02d}" / f"part-{i % 7}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"frame-{i:05d}.bin").write_bytes(os.urandom(size))
    for p in folder.rglob("*.bin"):  # warm the page cache for every tool alike
        p.read_bytes()


def wait(predicate: Any, every: float = 0.02) -> Any:
    while not (value := predicate()):
        time.sleep(every)
    return value


def main() -> None:
    base = WORK / "datasets"
    src = base / "facility" / "exp"
    make_source(src)
    inbox = fresh(base / "inbox")
    rclone = shutil.which("rclone")
    provider = start_server(base / "home-fac", {**FAST, "DATAFERRY_DATASETS__SITE_NAME": "fac"})
    consumer = start_server(base / "home-home", {**FAST, "DATAFERRY_DATASETS__SITE_NAME": "home"})
    p, c = provider.client(), consumer.client()
    rows: list[tuple[str, str, float, float, str]] = []
    try:
        p.add_endpoint("data", str(base / "facility"))
        c.add_endpoint("inbox", str(inbox), {"peer_write": "fac"})
        p.add_site("home", consumer.url, TOKEN, "consumer", "inbox:from-fac")
        c.add_site("fac", provider.url, TOKEN, "provider")
        runs: dict[str, Any] = {"n": 0}
        results: dict[str, float] = {}

        def clear() -> None:
            shutil.rmtree(inbox, ignore_errors=True)
            inbox.mkdir()
            runs["n"] += 1
            uid = f"fac.bench-{runs['n']}"
            job = p.publish(uid, "data:exp")["job_id"]
            p.wait(job)
            runs["uid"] = uid

        def deliver() -> None:
            uid = runs["uid"]
            start = time.perf_counter()
            p.broadcast(uid)
            tid = wait(lambda: c.synced_dataset(uid)["transfer_id"])
            p.wait(tid)
            # The job's own times on the provider, from its creation to the end of its
            # last attempt: the consumer learns the job id only when the provider
            # answers its request, and under load that answer can come late, which
            # once made a delivery seem to take 0.4 s.
            job = p.job_detail(tid)
            ended = max(datetime.fromisoformat(a["ended"]) for a in job["attempt_history"])
            took = (ended - datetime.fromisoformat(job["created"])).total_seconds()
            doc = wait(
                lambda: (
                    (d := c.synced_dataset(uid))["state"] in ("complete", "failed_permanent") and d
                )
            )
            if doc["state"] != "complete":
                raise SystemExit(f"delivery failed: {doc}")
            results.setdefault("transfer", float("inf"))
            results["transfer"] = min(results["transfer"], took)
            results["workflow"] = min(
                results.get("workflow", float("inf")), time.perf_counter() - start
            )

        timed(deliver, before=clear)
        mb = TOTAL / 1e6
        label = f"{FILES} files ({mb:,.0f} MB)"
        t_rc = t_durable = None
        if rclone:
            out = base / "rclone-out"
            t_rc = timed(
                lambda: run([rclone, "copy", str(src), str(out)]),
                before=lambda: shutil.rmtree(out, ignore_errors=True),
            )
            rows.append((label, "rclone copy", t_rc, mb, ""))

            # The consumer syncs what it received before it records it (a crash never
            # leaves a file that is only in the page cache); rclone does not. The same
            # copy followed by a sync of the filesystem shows what that costs here.
            def copy_and_sync() -> None:
                run([rclone, "copy", str(src), str(out)])
                run(["sync", "-f", str(out)])

            t_durable = timed(copy_and_sync, before=lambda: shutil.rmtree(out, ignore_errors=True))
            rows.append((label, "rclone copy + sync", t_durable, mb, ""))
        else:
            print("rclone not found: its rows are skipped (apt-get install rclone)")
        for name, tool in (("transfer", "df transfer"), ("workflow", "df workflow")):
            t = results[name]
            ratio = ""
            if t_rc is not None and t_durable is not None:
                ratio = f"{t_rc / t:.2f}x rclone, {t_durable / t:.2f}x +sync"
            rows.append((label, tool, t, mb, ratio))
    finally:
        p.close()
        c.close()
        provider.kill()
        consumer.kill()
    report(rows)


if __name__ == "__main__":
    main()
