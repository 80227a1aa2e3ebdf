"""Local-to-local transfer benchmark: dataferry (sha256 on) against cp -r and rclone copy.

    make bench            # or: .venv/bin/python bench/transfer_local.py

Cases: one 1 GiB file, and 5,000 files of 16 KiB. Prints wall time, throughput
and dataferry's throughput as a ratio of each reference measured in the same run.
References: ``cp -r`` (data left in the page cache), ``cp -r; sync`` (data on disk,
as dataferry's is when its job succeeds) and ``rclone copy`` (when installed).
Targets (issue 2): >= 0.5x cp and >= 2x rclone on the large file; >= 1x rclone on
the small files.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, fresh, report, run, start_server, timed

MiB = 1024 * 1024
LARGE = int(os.environ.get("BENCH_LARGE_MIB", "1024")) * MiB
SMALL_FILES = int(os.environ.get("BENCH_SMALL_FILES", "5000"))
SMALL_SIZE = 16 * 1024


def make_sources(base: Path) -> tuple[Path, Path]:
    large, small = base / "large", base / "small"
    if not (large / "one.bin").exists() or (large / "one.bin").stat().st_size != LARGE:
        fresh(large)
        with open(large / "one.bin", "wb") as out:
            for _ in range(LARGE // (64 * MiB)):
                out.write(os.urandom(64 * MiB))
    if not small.exists() or sum(1 for _ in small.rglob("*.bin")) != SMALL_FILES:
        fresh(small)
        for i in range(SMALL_FILES):
            d = small / f"d{i % 50:02d}"
            d.mkdir(exist_ok=True)
            (d / f"f{i:05d}.bin").write_bytes(os.urandom(SMALL_SIZE))
    for p in (large, small):  # warm the page cache for every tool alike
        for f in p.rglob("*.bin"):
            f.read_bytes()
    return large, small


def main() -> None:
    base = WORK / "transfer_local"
    large, small = make_sources(base / "src")
    out = base / "out"
    rclone = shutil.which("rclone")
    if rclone is None:
        print("rclone not found: its column is skipped (apt-get install rclone)")
    server = start_server(base / "home")
    client = server.client()
    client.add_endpoint("src", str(base / "src"))
    fresh(out)
    client.add_endpoint("out", str(out))

    def dataferry(name: str) -> None:
        job = client.transfer(f"src:{name}", f"out:df-{name}", checksum="sha256")
        doc = client.wait(job["job_id"])  # a long poll: answered when the job ends
        if doc["state"] != "succeeded":
            raise SystemExit(f"dataferry job failed: {doc}")

    rows: list[tuple[str, str, float, float, str]] = []

    def measure(name: str, src: Path, total: int) -> None:
        mb = total / 1e6
        label = f"{name} ({mb:,.0f} MB)"

        def clear() -> None:
            for tool in ("df", "cp", "rc"):
                shutil.rmtree(out / f"{tool}-{name}", ignore_errors=True)

        def cp_sync() -> None:
            # cp leaves its data in the page cache; dataferry's files are on disk when
            # the job reports success, so this row is the like-for-like reference.
            run(["cp", "-r", str(src), str(out / f"cp-{name}")])
            run(["sync"])

        t_cp = timed(lambda: run(["cp", "-r", str(src), str(out / f"cp-{name}")]), before=clear)
        t_cps = timed(cp_sync, before=clear)
        t_df = timed(lambda: dataferry(name), before=clear)
        rows.append((label, "cp -r", t_cp, mb, ""))
        rows.append((label, "cp -r; sync", t_cps, mb, ""))
        ratios = f"{t_cp / t_df:.2f}x cp, {t_cps / t_df:.2f}x cp+sync"
        if rclone:
            t_rc = timed(
                lambda: run([rclone, "copy", str(src), str(out / f"rc-{name}")]), before=clear
            )
            rows.append((label, "rclone copy", t_rc, mb, ""))
            ratios += f", {t_rc / t_df:.2f}x rclone"
        rows.append((label, "dataferry", t_df, mb, ratios))

    try:
        measure("large", large, LARGE)
        measure("small", small, SMALL_FILES * SMALL_SIZE)
    finally:
        client.close()
        server.kill()
    report(rows)


if __name__ == "__main__":
    main()
