"""The consumer's integrity check and receipt digests: files received over the peer
protocol carry the SHA-256 of the bytes that arrived (``datasets/receipts.py``); the
check uses it while the file is unchanged, reads the file when it changed, and reads
every file when ``datasets.integrity_reread`` is set."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dataferry.config import Settings
from dataferry.datasets import receipts
from dataferry.datasets.consumer import SyncedDataset
from dataferry.datasets.states import State

FILES = {f"run-{i % 2}/frame-{i}.bin": os.urandom(10_000 + i) for i in range(6)}


def received(core: Any, inbox: Path) -> SyncedDataset:
    """FILES received into endpoint 'inbox' through the peer protocol's service (the
    same code the REST door calls), and the synced dataset that expects them."""
    core.endpoints.add("inbox", str(inbox), {"peer_write": "fac"})
    for rel, data in FILES.items():
        tmp = f"{os.path.dirname(rel)}/.{os.path.basename(rel)}.1.dftmp"
        core.peer_files.put_small("fac", "inbox", f"ds/{tmp}", data, f"ds/{rel}", True)
    manifest = [
        {"path": rel, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for rel, data in FILES.items()
    ]
    now = datetime.now(UTC)
    return SyncedDataset(
        "fac.integrity", "fac", State.CHECKING_INTEGRITY, {}, manifest, 1, "inbox:ds",
        None, 0, None, "", 1, now, now,
    )  # fmt: skip


@pytest.fixture
def reread_core(settings: Settings) -> Iterator[Any]:
    from dataferry.app import build

    datasets = settings.datasets.model_copy(update={"integrity_reread": True})
    core = build(settings.model_copy(update={"datasets": datasets}))
    yield core
    core.stop()


def test_check_uses_receipts_while_files_are_unchanged(core: Any, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    ds = received(core, inbox)
    assert core.consumer.verify_files(ds) == []
    # A receipt naming other bytes, on a file otherwise unchanged, is believed: so the
    # check did not read the file (this is how a receipt is seen to be used).
    forged = inbox / "ds" / "run-0/frame-0.bin"
    digest = receipts.recorded(core.endpoints.open("inbox"), str(forged))
    assert digest is not None and digest == ds.manifest[0]["sha256"]
    value = os.getxattr(forged, receipts.XATTR).replace(digest.encode(), b"0" * 64)
    os.setxattr(forged, receipts.XATTR, value)
    assert core.consumer.verify_files(ds) == [f"run-0/frame-0.bin: sha256 {'0' * 64} != {digest}"]
    # A file changed after it arrived (same size, new bytes) is read, and caught.
    changed = inbox / "ds" / "run-1/frame-3.bin"
    time.sleep(0.01)
    changed.write_bytes(os.urandom(changed.stat().st_size))
    problems = core.consumer.verify_files(ds)
    assert len(problems) == 2 and problems[1].startswith("run-1/frame-3.bin: sha256 ")


def test_integrity_reread_reads_every_file(core: Any, reread_core: Any, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    ds = received(core, inbox)
    forged = inbox / "ds" / "run-0/frame-0.bin"
    digest = str(ds.manifest[0]["sha256"])
    value = os.getxattr(forged, receipts.XATTR).replace(digest.encode(), b"0" * 64)
    os.setxattr(forged, receipts.XATTR, value)
    assert core.consumer.verify_files(ds) != []
    assert reread_core.consumer.verify_files(ds) == []  # it reads the real bytes
    # and files without any receipt (written some other way) are read as before
    for p in (inbox / "ds").rglob("*.bin"):
        os.removexattr(p, receipts.XATTR)
    assert core.consumer.verify_files(ds) == []
    (inbox / "ds" / "run-1/frame-1.bin").write_bytes(b"short")
    assert core.consumer.verify_files(ds) == [
        f"run-1/frame-1.bin: size 5 != {len(FILES['run-1/frame-1.bin'])}"
    ]
