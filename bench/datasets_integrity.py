"""The consumer's integrity check of one delivered dataset: reading every file back
against using the receipt digests taken as the files arrived (datasets/receipts.py).

    .venv/bin/python bench/datasets.py              # delivers the 1 GiB, 2,000-file dataset
    .venv/bin/python bench/datasets_integrity.py    # then checks what it left in the inbox

Both ways run with the check's own four threads, over the dataset as the last
``bench/datasets.py`` run left it, with the page cache warm and (as root) dropped
first, which is what a dataset larger than memory meets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK

from dataferry.datasets import receipts
from dataferry.datasets.manifest import sha256_of
from dataferry.endpoints.backends.local import LocalEndpointFS


def drop_cache() -> bool:
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def main() -> None:
    delivered = sorted((WORK / "datasets" / "inbox" / "from-fac").glob("*"))
    if not delivered:
        raise SystemExit("no delivered dataset: run bench/datasets.py first")
    root = delivered[-1]
    fs = LocalEndpointFS("inbox", str(root), {})
    files = [str(p) for p in root.rglob("*") if p.is_file()]
    size = sum(os.path.getsize(f) for f in files)
    ways: list[tuple[str, Callable[[str], str | None]]] = [
        ("read back", lambda full: sha256_of(fs, full)[1]),
        ("receipts", lambda full: receipts.recorded(fs, full)),
    ]
    print(f"{len(files)} files, {size / 1e6:,.0f} MB in {root}")
    for cache in ("warm", "cold"):
        for name, way in ways:
            if cache == "cold" and not drop_cache():
                print("cold: skipped (dropping the page cache needs root)")
                return
            start, cpu = time.perf_counter(), time.process_time()
            with ThreadPoolExecutor(4) as pool:
                digests = list(pool.map(way, files))
            wall, used = time.perf_counter() - start, time.process_time() - cpu
            missing = sum(d is None for d in digests)
            note = f" ({missing} files without a valid receipt)" if missing else ""
            print(f"{cache:<5} {name:<10} {wall:6.2f} s, {used:5.2f} CPU-s{note}")


if __name__ == "__main__":
    main()
