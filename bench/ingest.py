"""Ingest benchmark: a 1 GiB bundle of 1,000 files with sha256 hashes, uploaded over
HTTP and ingested, against ``tar -xf`` followed by ``sha256sum`` of every file.

    make bench            # or: .venv/bin/python bench/ingest.py

Also measures the server's peak memory (VmHWM) after the 1 GiB bundle and after a
4 GiB one (generated while it is sent). Targets (issue 4): ingest wall time at most
1.3x the reference; peak server memory under 200 MiB for both bundles.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, fresh, report, run, start_server, timed
from tests.support.bundles import peak_rss_mib, synthetic_bundle, wait_state

from dataferry.ingest.bundler import write_bundle

MiB = 1024 * 1024
FILES = int(os.environ.get("BENCH_INGEST_FILES", "1000"))
FILE_SIZE = int(os.environ.get("BENCH_INGEST_FILE_MIB", "1")) * MiB
BIG_GIB = int(os.environ.get("BENCH_INGEST_BIG_GIB", "4"))


def make_bundle(base: Path) -> Path:
    src, bundle = base / "src", base / "bundle.tar"
    if not bundle.exists() or sum(1 for _ in src.rglob("*.bin")) != FILES:
        fresh(src)
        for i in range(FILES):
            d = src / f"d{i % 20:02d}"
            d.mkdir(exist_ok=True)
            (d / f"f{i:05d}.bin").write_bytes(os.urandom(FILE_SIZE))
        write_bundle(src, bundle, {"Transactions.project": "bench"}, hashtype="sha256")
    bundle.read_bytes()  # warm the page cache for both sides alike
    return bundle


def reference(bundle: Path, out: Path) -> None:
    run(["tar", "-xf", str(bundle), "-C", str(out)])
    files = [str(p) for p in out.rglob("*") if p.is_file()]
    for i in range(0, len(files), 500):
        run(["sha256sum", *files[i : i + 500]])


def ingest(url: str, body: object, size: int | None = None) -> int:
    headers = {"Content-Type": "application/octet-stream"}
    if size is not None:
        headers["Content-Length"] = str(size)
    r = httpx.post(f"{url}/ingest", content=body, headers=headers, timeout=600)  # type: ignore[arg-type]
    r.raise_for_status()
    job_id = int(r.json()["job_id"])
    doc = wait_state(url, job_id, timeout=3600)
    if doc["state"] != "OK":
        raise SystemExit(f"ingest failed: {doc}")
    return job_id


def file_chunks(path: Path) -> object:
    with open(path, "rb") as f:
        while block := f.read(MiB):
            yield block


def main() -> None:
    base = WORK / "ingest"
    bundle = make_bundle(base)
    size = bundle.stat().st_size
    out = base / "out"
    server = start_server(base / "home")
    assert server.proc is not None
    archive = server.home / "archive"
    try:
        t_ref = timed(lambda: reference(bundle, out), before=lambda: fresh(out))
        t_df = timed(
            lambda: ingest(server.url, file_chunks(bundle), size),
            before=lambda: shutil.rmtree(archive, ignore_errors=True),
        )
        peak_1 = peak_rss_mib(server.proc.pid)
        mb = FILES * FILE_SIZE / 1e6
        label = f"{FILES} files ({mb:,.0f} MB)"
        rows = [
            (label, "tar+sha256sum", t_ref, mb, ""),
            (label, "dataferry", t_df, mb, f"{t_df / t_ref:.2f}x the reference's time"),
        ]
        report(rows)
        print(f"server peak RSS after the {size / 2**30:.1f} GiB bundle: {peak_1:.0f} MiB")

        shutil.rmtree(archive, ignore_errors=True)
        subprocess.run(["sync"], check=True)
        body, total = synthetic_bundle(files=BIG_GIB * 4, file_size=256 * MiB, hashtype="sha256")
        start = time.perf_counter()
        ingest(server.url, body)
        t_big = time.perf_counter() - start
        peak_big = peak_rss_mib(server.proc.pid)
        print(
            f"server peak RSS after a {total / 2**30:.0f} GiB bundle: {peak_big:.0f} MiB "
            f"({t_big:.1f} s, {total / 1e6 / t_big:.0f} MB/s)"
        )
        verdict = "met" if t_df <= 1.3 * t_ref else "MISSED"
        print(f"target wall time <= 1.3x reference: {verdict} ({t_df / t_ref:.2f}x)")
        verdict = "met" if max(peak_1, peak_big) < 200 else "MISSED"
        print(f"target peak memory < 200 MiB: {verdict} ({max(peak_1, peak_big):.0f} MiB)")
    finally:
        server.kill()
        shutil.rmtree(archive, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
