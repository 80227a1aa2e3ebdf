"""Submit a transfer: validate everything before a job exists."""

from __future__ import annotations

import time
from typing import Any

from dataferry.endpoints.filesystem import EndpointFS
from dataferry.endpoints.paths import join, name, parent, split_location
from dataferry.endpoints.service import EndpointService
from dataferry.errors import DataferryError, InvalidRequest, NotFound
from dataferry.jobs.model import Job
from dataferry.jobs.service import JobService
from dataferry.transfers import mirror
from dataferry.transfers import plan as planning
from dataferry.transfers.limits import reference_time
from dataferry.transfers.request import Mode, TransferRequest
from dataferry.transfers.run import classify

KIND = "transfer"
#: paths a preview lists at most (its totals count every file)
PREVIEW_LIMIT = 1000


def destination_of(src_is_dir: bool, src_rel: str, dst_rel: str, dst_is_dir: bool) -> str:
    """Where the source lands: a folder's contents go into the destination folder;
    a file goes into the destination if that is an existing folder, else becomes it."""
    if not src_is_dir and dst_is_dir:
        return join(dst_rel, name(src_rel))
    return dst_rel


class TransferService:
    def __init__(self, jobs: JobService, endpoints: EndpointService) -> None:
        self.jobs = jobs
        self.endpoints = endpoints

    def validate(self, req: TransferRequest) -> dict[str, Any]:
        """Check the request against the registry and storage; return the job parameters."""
        src_name, src_rel = split_location(req.source)
        dst_name, dst_rel = split_location(req.destination)
        src = self.endpoints.open(src_name)
        dst = self.endpoints.open(dst_name)
        try:
            src.check_inside(src_rel)
            if not src.fs.exists(src.full(src_rel)):
                raise NotFound(
                    f"source path {src_rel or '/'!r} does not exist on endpoint {src_name!r}"
                )
            src_is_dir = src.fs.isdir(src.full(src_rel))
            if not src_is_dir and src_rel == "":
                raise InvalidRequest("source endpoint root is not a folder")
            if src_is_dir and req.expected_checksum:
                raise InvalidRequest("expected_checksum applies to a single file, not a folder")
            if not src_is_dir and req.mode is Mode.MIRROR:
                raise InvalidRequest("mode mirror applies to a folder source, not a file")
            if not src_is_dir and (req.include or req.exclude):
                raise InvalidRequest("include and exclude apply to a folder source, not a file")
            if not src_is_dir and req.limits:
                given = [
                    f
                    for f in ("min_size", "max_size", "min_age", "max_age")
                    if getattr(req, f) is not None
                ]
                *others, last = given
                named = f"{', '.join(others)} and {last}" if others else last
                verb = "apply" if others else "applies"
                raise InvalidRequest(f"{named} {verb} to a folder source, not a file")
            dst.check_inside(dst_rel)
            dst_is_dir = dst.fs.isdir(dst.full(dst_rel))
            target = destination_of(src_is_dir, src_rel, dst_rel, dst_is_dir)
            if not src_is_dir and target == "":
                raise InvalidRequest("a single file needs a destination path, not the root")
            if dst.fs.exists(dst.full(target)) and src_is_dir != dst.fs.isdir(dst.full(target)):
                kind = "a file" if src_is_dir else "a folder"
                raise InvalidRequest(f"destination {target!r} on {dst_name!r} is {kind}")
            _check_parents_are_folders(dst, dst_name, target)
            if req.mode is not Mode.CHECK:  # a check only reads: a read-only copy is fine
                dst.check_writable(target)
            if req.mode is Mode.CHECK and req.empty_folders:
                raise InvalidRequest("empty_folders creates folders; mode check writes nothing")
            if src.storage_id == dst.storage_id and _overlaps(src.full(src_rel), dst.full(target)):
                raise InvalidRequest("source and destination overlap; one is inside the other")
        except DataferryError:
            raise
        except Exception as exc:  # a protocol's driver error: say what it means
            raise classify(exc, f"checking {req.source} -> {req.destination}", src, dst) from exc
        finally:
            src.close()
            dst.close()
        params = req.params()
        params["source"] = f"{src_name}:{src_rel}"
        params["destination"] = f"{dst_name}:{target}"
        params["source_is_dir"] = "1" if src_is_dir else ""
        return params

    def submit(self, req: TransferRequest) -> Job:
        return self.jobs.submit(KIND, self.validate(req))

    def preview(self, req: TransferRequest, limit: int = PREVIEW_LIMIT) -> dict[str, Any]:
        """What the transfer would take, and for ``mirror`` remove, without a job
        (a dry run): the same checks as ``submit``, then the same listing the job's
        plan makes. Lists are cut at ``limit`` paths; the totals are whole."""
        params = self.validate(req)
        src_name, src_rel = split_location(params["source"])
        dst_name, dst_rel = split_location(params["destination"])
        src = self.endpoints.open(src_name)
        dst = self.endpoints.open(dst_name)
        now_ns = time.time_ns()  # a dry run measures ages from its own moment
        try:
            listed = planning.plan(src, src_rel, req.filter)
            files, unknown_mtime = planning.choose(listed, req.limits, now_ns)
            folders: list[str] = []
            if req.empty_folders and params["source_is_dir"] and dst.keeps_folders:
                folders = planning.empty_folders(src, src_rel, req.filter)
            doomed: list[str] = []
            if req.mode is Mode.MIRROR:
                planned = {f.path for f in files}
                listed_paths = {f.path for f in listed}  # what the limits left out too
                doomed = mirror.extraneous(
                    dst,
                    dst.full(dst_rel),
                    planned,
                    req.filter,
                    req.limits,
                    now_ns,
                    listed_paths.__contains__ if req.limits else None,
                )
        except DataferryError:
            raise
        except Exception as exc:
            raise classify(exc, f"listing {req.source} -> {req.destination}", src, dst) from exc
        finally:
            src.close()
            dst.close()
        found: dict[str, Any] = {
            "source": params["source"],
            "destination": params["destination"],
            "mode": req.mode.value,
            "files_total": len(files),
            "bytes_total": sum(f.size for f in files),
            "files": [{"path": f.path, "size": f.size} for f in files[:limit]],
            "folders_total": len(folders),
            "folders": folders[:limit],
            "delete_total": len(doomed),
            "delete": doomed[:limit],
            "truncated": max(len(files), len(folders), len(doomed)) > limit,
            # files an age limit left out because the source does not tell their time
            "unknown_mtime": unknown_mtime,
        }
        if req.limits.ages:  # no None: XML-RPC has no such value
            found["reference_time"] = reference_time(now_ns)
        return found


def _check_parents_are_folders(dst: EndpointFS, dst_name: str, target: str) -> None:
    ancestor = parent(target)
    while ancestor and not dst.fs.exists(dst.full(ancestor)):
        ancestor = parent(ancestor)
    if ancestor and not dst.fs.isdir(dst.full(ancestor)):
        raise InvalidRequest(
            f"destination {target!r} on {dst_name!r} cannot be created: {ancestor!r} is a file"
        )


def _overlaps(a: str, b: str) -> bool:
    a, b = a.rstrip("/"), b.rstrip("/")
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")
