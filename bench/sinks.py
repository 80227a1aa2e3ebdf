"""Sinks: deliver 20,000 changes to a local receiver, against plain sequential
POSTs of the same documents with httpx, measured in the same run.

The receiver runs in its own process (uvicorn), so it does not share the sender's
interpreter. Two receivers: one that answers at once, and one that takes 5 ms per
document (a partner that writes each document to its database before answering).

References: ``httpx.post`` per document (a new connection each: what a one-row-at-a-
time daemon does) and one ``httpx.Client`` posting sequentially (keep-alive, no
concurrency). dataferry: a sink over a collection of 20,000 records, run by the
daemon inside a core on SQLite, every delivery recorded durably in the outbox.

    .venv/bin/python bench/sinks.py [--changes 20000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def serve(port: int, delay: float) -> None:
    import uvicorn

    count = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal count
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/count":
            out = str(count).encode()
        else:
            json.loads(body)
            if delay:
                await asyncio.sleep(delay)
            count += 1
            out = b'{"ok":true}'
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": out})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def start_receiver(delay: float) -> tuple[multiprocessing.Process, str]:
    import httpx
    from tests.support.services import free_port

    port = free_port()
    proc = multiprocessing.Process(target=serve, args=(port, delay), daemon=True)
    proc.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/count", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return proc, url


def documents(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": str(uuid.UUID(int=i)),
            "status": "new",
            "lastModified": "2026-11-26T04:00:00+00:00",
            "record": {"species": "Acacia dealbata", "comment": "x" * 200, "n": i},
        }
        for i in range(n)
    ]


def sequential(url: str, docs: list[dict[str, Any]], keep_alive: bool) -> float:
    import httpx

    start = time.perf_counter()
    if keep_alive:
        with httpx.Client() as c:
            for d in docs:
                c.post(f"{url}/in", json=d).raise_for_status()
    else:
        for d in docs:
            httpx.post(f"{url}/in", json=d).raise_for_status()
    return time.perf_counter() - start


def dataferry(url: str, docs: list[dict[str, Any]], concurrency: int) -> float:
    from dataferry.app import build
    from dataferry.config import Settings
    from dataferry.sinks.spec import SinkSettings

    home = Path(tempfile.mkdtemp(prefix="bench-sinks-"))
    core = build(
        Settings(
            home=home,
            database_url=f"sqlite:///{home / 'dataferry.db'}",
            sink=SinkSettings(tick_seconds=0.05),
        )
    )
    try:
        items = [(d["id"], d["record"]) for d in docs]
        for i in range(0, len(items), 1000):
            core.records.put_many("observations", items[i : i + 1000])
        core.start()
        start = time.perf_counter()
        core.sinks.add(
            {
                "name": "bench",
                "source": {"collection": "observations"},
                "url": f"{url}/in",
                "concurrency": concurrency,
            }
        )
        while core.sinks.store.get("bench").delivered_total < len(docs):
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        assert core.sinks.get("bench")["changes"]["pending"] == 0
        return elapsed
    finally:
        core.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--delays", default="0,0.005", help="receiver seconds per document")
    parser.add_argument(
        "--plain-sample",
        type=int,
        default=1000,
        help="httpx.post (a new connection and TLS context per call) is slow: its rate "
        "is measured on this many of the documents",
    )
    args = parser.parse_args()
    docs = documents(args.changes)
    print(
        f"{args.changes} changes, dataferry concurrency {args.concurrency}, {os.cpu_count()} CPUs"
    )
    print(f"{'receiver':<16} {'sender':<34} {'seconds':>8} {'changes/s':>10}  ratio")
    for delay in (float(d) for d in args.delays.split(",")):
        label = f"{delay * 1000:g} ms/doc"
        proc, url = start_receiver(delay)
        try:
            sample = docs[: args.plain_sample]
            plain_rate = len(sample) / sequential(url, sample, keep_alive=False)
            rows = [
                ("httpx.post sequential", args.changes / plain_rate),
                ("httpx.Client sequential", sequential(url, docs, keep_alive=True)),
                ("dataferry sink", dataferry(url, docs, args.concurrency)),
            ]
        finally:
            proc.terminate()
            proc.join()
        plain, client, ours = (r[1] for r in rows)
        for name, seconds in rows:
            ratio = ""
            if name == "dataferry sink":
                ratio = f"{plain / ours:.2f}x httpx.post, {client / ours:.2f}x httpx.Client"
            print(f"{label:<16} {name:<34} {seconds:8.2f} {args.changes / seconds:10.0f}  {ratio}")


if __name__ == "__main__":
    main()
