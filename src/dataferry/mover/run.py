"""The ``mover.move`` job: copy each source (URL or ``ENDPOINT:PATH``) into the
destination, or pack them all into one zip archive there. Every file is written
to a temporary name, verified and renamed, as in transfers."""

from __future__ import annotations

import hashlib
import time
import zipfile
from typing import Any

from dataferry.config import TransferSettings
from dataferry.endpoints.filesystem import EndpointFS
from dataferry.endpoints.paths import join
from dataferry.endpoints.service import EndpointService
from dataferry.errors import DataferryError, NotFound, PermanentError
from dataferry.jobs.context import JobContext
from dataferry.mover import locations
from dataferry.transfers import plan as planning
from dataferry.transfers.copy import Written, copy_file, discard, publish, temporary_name
from dataferry.transfers.request import Checksum
from dataferry.transfers.run import classify

# the times a zip member's date can hold (in local time, as zip keeps it)
_ZIP_FIRST = time.mktime((1980, 1, 2, 0, 0, 0, 0, 0, -1))
_ZIP_LAST = time.mktime((2107, 12, 30, 0, 0, 0, 0, 0, -1))


class _CountingWriter:
    """Counts and hashes what a zip archive writes (the archive's size and checksum)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.size = 0
        self.hasher = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.raw.write(data)
        self.size += len(data)
        self.hasher.update(data)
        return len(data)

    def flush(self) -> None:
        if hasattr(self.raw, "flush"):
            self.raw.flush()

    def tell(self) -> int:
        return self.size


Item = tuple[EndpointFS, str, str, int, int | None]


def _items(fs: EndpointFS, rel: str, base: str) -> list[tuple[str, str, int, int | None]]:
    """(source full path, path at the destination, size, modification time in ns or
    None) for every file of a source."""
    files = planning.plan(fs, rel)
    return [
        (
            fs.full(join(rel, f.path)) if f.path else fs.full(rel),
            join(base, f.path),
            f.size,
            f.mtime,
        )
        for f in files
    ]


def _member(name: str, mtime: int | None) -> zipfile.ZipInfo:
    """A zip member named ``name`` dated like its source (zip keeps local time to two
    seconds, 1980 to 2107); the time of writing where the source has none."""
    seconds = time.time() if mtime is None else mtime / 10**9
    when = time.localtime(min(max(seconds, _ZIP_FIRST), _ZIP_LAST))
    info = zipfile.ZipInfo(name, date_time=when[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def handler(endpoints: EndpointService, settings: TransferSettings) -> Any:
    def run(ctx: JobContext) -> dict[str, Any]:
        params = ctx.params
        dest = locations.parse(params["destination"], "destination")
        opened: list[EndpointFS] = []
        try:
            try:
                dst, dst_rel = locations.open_location(dest, endpoints)
            except NotFound as exc:
                raise PermanentError(str(exc)) from exc
            opened.append(dst)
            plan: list[Item] = []
            ctx.progress(task="planning", task_percent=0.0, force=True)
            for text in params["sources"]:
                loc = locations.parse(text, "source")
                try:
                    src, rel = locations.open_location(loc, endpoints)
                except NotFound as exc:
                    raise PermanentError(str(exc)) from exc
                opened.append(src)
                try:
                    items = _items(src, rel, locations.base_name(loc))
                except DataferryError:
                    raise
                except Exception as exc:
                    raise classify(exc, f"reading {text}", src) from exc
                plan.extend((src, *item) for item in items)
            total = sum(size for _, _, _, size, _ in plan)
            state = {"bytes": 0, "files": 0}

            def on_bytes(n: int) -> None:
                state["bytes"] += n
                ctx.progress(
                    task="copying",
                    bytes_done=state["bytes"],
                    task_percent=100.0 * state["bytes"] / total if total else 0.0,
                )

            ctx.progress(bytes_total=total, files_total=len(plan), force=True)
            if params.get("zip"):
                target = (
                    dst_rel if dst_rel.endswith(".zip") else join(dst_rel, f"move-{ctx.job_id}.zip")
                )
                try:
                    _zip(ctx, plan, dst, dst.full(target), settings, on_bytes)
                except DataferryError:
                    raise
                except Exception as exc:
                    raise classify(exc, target, dst) from exc
                return {"files": len(plan), "bytes": state["bytes"], "archive": target}
            for src, full, out, size, mtime in plan:
                ctx.check()
                try:
                    copy_file(
                        src,
                        full,
                        dst,
                        dst.full(join(dst_rel, out)),
                        job_id=ctx.job_id,
                        algo=Checksum.SHA256,
                        chunk=settings.chunk_size,
                        on_bytes=on_bytes,
                        size_hint=size,
                        mtime=mtime,
                    )
                except DataferryError:
                    raise
                except Exception as exc:
                    raise classify(exc, out, src, dst) from exc
                state["files"] += 1
                ctx.progress(files_done=state["files"])
            ctx.progress(task="done", task_percent=100.0, force=True)
            return {"files": state["files"], "bytes": state["bytes"]}
        finally:
            for fs in opened:
                fs.close()

    return run


def _zip(
    ctx: JobContext,
    plan: list[Item],
    dst: EndpointFS,
    final: str,
    settings: TransferSettings,
    on_bytes: Any,
) -> None:
    folder = final.rpartition("/")[0]
    if folder:
        dst.makedirs(folder)
    tmp = temporary_name(final, ctx.job_id)
    try:
        with dst.open_write(tmp) as raw:
            out = _CountingWriter(raw)
            with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:  # type: ignore[call-overload]
                for src, full, name, size, mtime in plan:
                    ctx.check()
                    try:
                        with (
                            src.open_read(full, size or None) as fin,
                            archive.open(_member(name, mtime), "w", force_zip64=True) as member,
                        ):
                            while block := fin.read(settings.chunk_size):
                                member.write(block)
                                on_bytes(len(block))
                    except DataferryError:
                        raise
                    except Exception as exc:
                        raise classify(exc, name, src, dst) from exc
            dst.make_durable(raw)
    except BaseException:
        discard(dst, tmp)
        raise
    item = Written(tmp, final, out.size, f"sha256:{out.hasher.hexdigest()}")
    publish(dst, item, readback=False, algo=Checksum.SHA256, chunk=settings.chunk_size)
