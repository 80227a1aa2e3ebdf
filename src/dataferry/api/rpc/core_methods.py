"""RPC methods of the core services (jobs, endpoints, transfers, schedules)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dataferry.endpoints import browse
from dataferry.errors import InvalidRequest
from dataferry.jobs.model import parse_job_id
from dataferry.transfers.limits import Bytes, Seconds
from dataferry.transfers.request import TransferRequest

if TYPE_CHECKING:
    from dataferry.app import Core


def job_id_of(value: Any) -> int:
    """A job id as RPC callers send it (see ``parse_job_id``)."""
    number = parse_job_id(value)
    if number is None:
        raise InvalidRequest(f"job id {value!r} is not a whole number")
    return number


def _transfer_method(
    action: Callable[[TransferRequest], dict[str, Any]], doc: str
) -> Callable[..., dict[str, Any]]:
    """An RPC method taking a transfer's fields (its signature is what methodHelp
    shows and what calls are bound against) and handing the request to ``action``."""

    def method(
        source: str,
        destination: str,
        mode: str = "copy",
        checksum: str = "sha256",
        overwrite: str | None = None,
        expected_checksum: str | None = None,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        compare: str | None = None,
        empty_folders: bool = False,
        min_size: Bytes | None = None,
        max_size: Bytes | None = None,
        min_age: Seconds | None = None,
        max_age: Seconds | None = None,
    ) -> dict[str, Any]:
        return action(
            TransferRequest.build(
                str(source),
                str(destination),
                mode,
                checksum,
                overwrite or None,
                expected_checksum,
                include,
                exclude,
                compare or None,
                empty_folders,
                min_size,
                max_size,
                min_age,
                max_age,
            )
        )

    method.__doc__ = doc
    return method


def install(core: Core) -> None:
    rpc = core.rpc

    submit = _transfer_method(
        lambda req: core.transfers.submit(req).document(),
        """Submit a transfer between ENDPOINT:PATH locations; returns the job document.
        include/exclude: lists of gitignore-style patterns choosing a folder's files;
        empty_folders: true to create the source's empty folders too;
        min_size/max_size (bytes), min_age/max_age (seconds): only files of a folder
        within those sizes and older / younger than those ages.""",
    )
    preview = _transfer_method(
        core.transfers.preview,
        """A dry run of transfers.submit: the files it would take (and, for mirror,
        remove), at most 1,000 paths each with whole totals; no job is created.""",
    )

    def get(job_id: Any) -> dict[str, Any]:
        """The job document of one job."""
        return core.jobs.get(job_id_of(job_id)).document()

    def list_jobs(
        state: str | None = None, kind: str | None = None, limit: int = 50, offset: int = 0
    ) -> dict[str, Any]:
        """A page of jobs, newest first: {"jobs": [...], "total", "limit", "offset"}."""
        jobs, total = core.jobs.page(
            state=state or None, kind=kind or None, limit=int(limit), offset=int(offset)
        )
        return {
            "jobs": [j.document() for j in jobs],
            "total": total,
            "limit": limit,
            "offset": offset,
        }

    def cancel(job_id: Any) -> dict[str, Any]:
        """Cancel a job; returns its document."""
        return core.jobs.cancel(job_id_of(job_id)).document()

    def prune(older_than_days: Any) -> dict[str, Any]:
        """Delete finished transfer, move, ala and records-sync jobs that ended more
        than older_than_days ago; returns {"deleted": n}."""
        return {"deleted": core.jobs.prune(older_than_days)}

    def retry(job_id: Any) -> dict[str, Any]:
        """Restart a failed or cancelled job with a fresh set of attempts."""
        return core.jobs.retry(job_id_of(job_id)).document()

    def endpoints() -> list[dict[str, Any]]:
        """Registered endpoints (secret names, never values)."""
        return [e.document() for e in core.endpoints.list()]

    rpc.register("transfers.submit", submit)
    rpc.register("transfers.preview", preview)
    rpc.register("jobs.get", get)
    rpc.register("jobs.list", list_jobs)
    rpc.register("jobs.cancel", cancel)
    rpc.register("jobs.retry", retry)
    rpc.register("jobs.prune", prune)

    def files(
        endpoint: Any, path: Any = "", recursive: Any = False, limit: Any = 1000, offset: Any = 0
    ) -> dict[str, Any]:
        """What is at endpoint:path: a folder's entries (path, type, size, mtime), paged,
        or the file itself (as GET /api/v1/endpoints/{name}/files)."""
        return browse.listing(core.endpoints, endpoint, path, recursive, limit, offset).document()

    rpc.register("endpoints.list", endpoints)
    rpc.register("endpoints.files", files)

    schedules = core.schedules

    def add_schedule(name: Any, every: Any, transfer: Any, start: Any = None) -> dict[str, Any]:
        """Submit a transfer again every ``every`` seconds (60 to 31622400), runs on
        start + k * every (start: ISO 8601 with a zone, absent: now); transfer: an
        object of transfers.submit's fields. Returns the schedule."""
        req = TransferRequest.from_document(transfer)
        return schedules.add(name, req, every, start).document()

    def list_schedules() -> list[dict[str, Any]]:
        """Every schedule: transfer, every, next_run, runs, skipped, last_job_id, ..."""
        return [s.document() for s in schedules.list()]

    def get_schedule(name: str) -> dict[str, Any]:
        """One schedule (last_error says why its last run was skipped, if it was)."""
        return schedules.get(name).document()

    def run_schedule(name: str) -> dict[str, Any]:
        """A run of the schedule now; returns its job document."""
        return schedules.run_now(name).document()

    def pause_schedule(name: str) -> dict[str, Any]:
        """No runs until resumed; returns the schedule."""
        return schedules.pause(name).document()

    def resume_schedule(name: str) -> dict[str, Any]:
        """Runs again from the next run time after now; returns the schedule."""
        return schedules.resume(name).document()

    def remove_schedule(name: str) -> bool:
        """Remove the schedule (the jobs it made stay); returns true."""
        schedules.remove(name)
        return True

    rpc.register("schedules.add", add_schedule)
    rpc.register("schedules.list", list_schedules)
    rpc.register("schedules.get", get_schedule)
    rpc.register("schedules.run", run_schedule)
    rpc.register("schedules.pause", pause_schedule)
    rpc.register("schedules.resume", resume_schedule)
    rpc.register("schedules.remove", remove_schedule)
