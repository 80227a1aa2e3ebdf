"""Build ingest bundles for tests: good ones, and every kind of hostile one."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

MiB = 1024 * 1024

BASE_META: list[dict[str, Any]] = [
    {"destinationTable": "Transactions.submitter", "value": "10"},
    {"destinationTable": "Transactions.project", "value": "p1"},
    {"destinationTable": "Transactions.instrument", "value": "54"},
    {"destinationTable": "TransactionKeyValue", "key": "Tag", "value": "run-7"},
]


def file_entry(path: str, data: bytes, hashtype: str = "sha1") -> dict[str, Any]:
    name = path.rsplit("/", 1)[-1]
    return {
        "destinationTable": "Files",
        "name": name,
        "subdir": path[: -len(name)].rstrip("/"),
        "size": len(data),
        "hashtype": hashtype,
        "hashsum": hashlib.new(hashtype, data).hexdigest(),
        "mimetype": "application/octet-stream",
        "ctime": "2026-11-26T00:00:00",
        "mtime": "2026-11-26T00:00:00",
    }


def metadata_for(
    files: dict[str, bytes], hashtype: str = "sha1", base: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    return [*(BASE_META if base is None else base)] + [
        file_entry(p, d, hashtype) for p, d in files.items()
    ]


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes, **attrs: Any) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    for k, v in attrs.items():
        setattr(info, k, v)
    tar.addfile(info, io.BytesIO(data))


def make_bundle(
    files: dict[str, bytes],
    *,
    metadata: Any = None,
    metadata_text: bytes | None = None,
    metadata_first: bool = False,
    hashtype: str = "sha1",
    extra: list[tarfile.TarInfo] | None = None,
    compression: str = "",
) -> bytes:
    """A tar bundle in memory: ``data/<path>`` members and ``metadata.txt``."""
    if metadata_text is None:
        doc = metadata if metadata is not None else metadata_for(files, hashtype)
        metadata_text = json.dumps(doc).encode()
    buf = io.BytesIO()
    mode = f"w:{compression}" if compression else "w"
    with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
        if metadata_first:
            add_bytes(tar, "metadata.txt", metadata_text)
        for path, data in files.items():
            add_bytes(tar, f"data/{path}", data)
        for info in extra or []:
            tar.addfile(info)
        if not metadata_first:
            add_bytes(tar, "metadata.txt", metadata_text)
    return buf.getvalue()


def upload(url: str, body: Any, path: str = "/upload", **kw: Any) -> httpx.Response:
    return httpx.post(
        f"{url}{path}",
        content=body,
        headers={"Content-Type": "application/octet-stream"},
        timeout=120,
        **kw,
    )


def wait_state(url: str, job_id: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(f"{url}/get_state", params={"job_id": job_id}, timeout=10)
        r.raise_for_status()
        doc: dict[str, Any] = r.json()
        if doc["complete"]:
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"ingest job {job_id} not complete after {timeout}s: {doc}")
        time.sleep(0.1)


def archive_files(root: Path) -> list[str]:
    """Every file under an archive folder (relative paths), temporaries included."""
    if not root.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 1_700_000_000
    return info.tobuf(format=tarfile.PAX_FORMAT)


def synthetic_bundle(
    files: int, file_size: int, seed: int = 1, hashtype: str = "sha1"
) -> tuple[Iterator[bytes], int]:
    """A bundle generated while it is sent (nothing of it on disk or in memory at once):
    each file repeats one random MiB. Returns (body, total data bytes)."""
    block = hashlib.sha256(str(seed).encode()).digest() * (MiB // 32)
    digest = hashlib.new(hashtype)
    for _ in range(file_size // MiB):
        digest.update(block)
    hashsum = digest.hexdigest()

    def body() -> Iterator[bytes]:
        meta: list[dict[str, Any]] = [
            {"destinationTable": "Transactions.project", "value": "big"},
        ]
        for i in range(files):
            name = f"part-{i:03d}.bin"
            yield _header(f"data/big/{name}", file_size)
            for _ in range(file_size // MiB):
                yield block
            meta.append(
                {
                    "destinationTable": "Files",
                    "name": name,
                    "subdir": "big",
                    "size": file_size,
                    "hashtype": hashtype,
                    "hashsum": hashsum,
                }
            )
        text = json.dumps(meta).encode()
        yield _header("metadata.txt", len(text))
        yield text + b"\0" * (-len(text) % 512)
        yield b"\0" * 1024

    return body(), files * file_size


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")
