"""The provider side: publish datasets (manifest computed by a job), announce them to
consumers, and deliver them over the peer file protocol when a consumer asks."""

from __future__ import annotations

import builtins
import logging
import re
import ssl
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from dataferry.config import DatasetSettings
from dataferry.datasets import manifest as manifests
from dataferry.datasets.peer import PeerClient
from dataferry.datasets.sites import NAME_RE, SiteService
from dataferry.db.base import utcnow
from dataferry.db.engine import Database
from dataferry.db.models import DatasetRow, DeliveryRow
from dataferry.endpoints.paths import join, split_location
from dataferry.endpoints.service import EndpointService
from dataferry.errors import (
    DataferryError,
    InvalidRequest,
    NotFound,
    PermanentError,
    TransientError,
)
from dataferry.jobs.context import JobContext
from dataferry.jobs.model import Job
from dataferry.jobs.service import JobService
from dataferry.jobs.states import JobState

log = logging.getLogger(__name__)

MANIFEST_KIND = "dataset_manifest"
DELIVERY_KIND = "dataset_delivery"
#: the endpoint name a delivery job's destination uses for the consumer's endpoint
PEER_ENDPOINT = "@peer"
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$")


class Status:
    """What ``transfer-status`` answers."""

    COMPLETE = "complete"
    IN_PROGRESS = "in progress"
    FAILED = "failed"
    BAD_REQUEST = "bad request"
    SERVER_ERROR = "server error"


#: the HTTP status a ``transfer-status`` answer goes with (200 for the others)
_HTTP_CODES = {Status.BAD_REQUEST: 400, Status.SERVER_ERROR: 500}


def http_code(status: str) -> int:
    """The HTTP status the REST door sends a ``transfer-status`` answer with."""
    return _HTTP_CODES.get(status, 200)


@dataclass(frozen=True, slots=True)
class Dataset:
    uid: str
    source: str
    meta: dict[str, Any]
    manifest: list[dict[str, Any]]
    state: str
    version: int
    job_id: int | None
    error: str
    created: str
    updated: str

    @classmethod
    def from_row(cls, row: DatasetRow) -> Dataset:
        return cls(
            row.uid,
            row.source,
            dict(row.meta or {}),
            list(row.manifest or []),
            row.state,
            row.version,
            row.job_id,
            row.error,
            row.created.isoformat(),
            row.updated.isoformat(),
        )

    def document(self, with_manifest: bool = True) -> dict[str, Any]:
        files, size = manifests.totals(self.manifest)
        doc: dict[str, Any] = {
            "uid": self.uid,
            "source": self.source,
            "meta": self.meta,
            "state": self.state,
            "version": self.version,
            "job_id": self.job_id,
            "error": self.error,
            "files": files,
            "bytes": size,
            "created": self.created,
            "updated": self.updated,
        }
        if with_manifest:
            doc["manifest"] = self.manifest
        return doc


def check_uid(uid: str, prefix: str) -> None:
    if not prefix:
        raise InvalidRequest(
            "set datasets.site_name (DATAFERRY_DATASETS__SITE_NAME) before publishing: "
            "it is the prefix of this site's dataset UIDs"
        )
    head, dot, tail = uid.partition(".")
    if not dot or head != prefix or not ID_RE.fullmatch(tail):
        raise InvalidRequest(
            f"dataset UID {uid!r} must be {prefix}.<id> (letters, digits, '.', '_', '-')"
        )


def check_announced_uid(uid: str) -> None:
    """A UID a provider announces to a consumer: ``<its site name>.<id>``, what
    :func:`check_uid` lets a provider publish (it goes into the consumer's URLs)."""
    head, dot, tail = uid.partition(".")
    if not dot or not NAME_RE.fullmatch(head) or not ID_RE.fullmatch(tail):
        raise InvalidRequest(
            f"dataset UID {uid!r} must be <site-prefix>.<id> (letters, digits, '.', '_', '-')"
        )


class ProviderService:
    def __init__(
        self,
        db: Database,
        jobs: JobService,
        endpoints: EndpointService,
        sites: SiteService,
        settings: DatasetSettings,
        verify: ssl.SSLContext | bool,
    ) -> None:
        self.db = db
        self.jobs = jobs
        self.endpoints = endpoints
        self.sites = sites
        self.settings = settings
        self.verify = verify

    # -- publishing --------------------------------------------------------------------
    def publish(self, uid: str, source: str, meta: dict[str, str] | None = None) -> Dataset:
        """Record (or re-publish) a dataset; a job computes its manifest."""
        check_uid(uid, self.settings.site_name)
        endpoint, rel = split_location(source)
        fs = self.endpoints.open(endpoint)
        try:
            fs.check_inside(rel)
            if not fs.fs.exists(fs.full(rel)):
                raise NotFound(f"path {rel or '/'!r} does not exist on endpoint {endpoint!r}")
            if not fs.fs.isdir(fs.full(rel)):
                raise InvalidRequest(f"{source!r} is not a folder on endpoint {endpoint!r}")
        finally:
            fs.close()
        source = f"{endpoint}:{rel}"
        meta = {str(k): str(v) for k, v in (meta or {}).items()}
        try:
            with self.db.session() as s:
                row = s.scalar(select(DatasetRow).where(DatasetRow.uid == uid))
                if row is None:
                    row = DatasetRow(uid=uid, source=source, meta=meta, manifest=[], version=1)
                    s.add(row)
                else:
                    row.version += 1
                    row.source, row.meta, row.manifest = source, meta, []
                row.state, row.error, row.updated = "computing", "", utcnow()
                row.job_id = None  # the last version's job is not this one's
                s.flush()
                version = row.version
        except IntegrityError as exc:
            raise TransientError(f"dataset {uid!r} is being published concurrently") from exc
        job = self.jobs.submit(MANIFEST_KIND, {"uid": uid, "version": version})
        with self.db.session() as s:
            s.execute(
                update(DatasetRow)
                .where(DatasetRow.uid == uid, DatasetRow.version == version)
                .values(job_id=job.id)
            )
        return self.get(uid)

    def get(self, uid: str) -> Dataset:
        with self.db.read() as s:
            row = s.scalar(select(DatasetRow).where(DatasetRow.uid == uid))
            if row is None:
                raise NotFound(f"dataset {uid!r} does not exist")
            ds = Dataset.from_row(row)
        return self._settled(ds)

    def list(self) -> list[Dataset]:
        with self.db.read() as s:
            found = [
                Dataset.from_row(r) for r in s.scalars(select(DatasetRow).order_by(DatasetRow.uid))
            ]
        return [self._settled(ds) for ds in found]

    def _settled(self, ds: Dataset) -> Dataset:
        """A dataset still ``computing`` whose manifest job has ended without a manifest
        (cancelled, or failed after its retries) is ``failed``, with the job's reason:
        it would otherwise wait for a manifest that never comes."""
        if ds.state != "computing" or ds.job_id is None:
            return ds
        try:
            job = self.jobs.get(ds.job_id)
        except NotFound:
            return ds
        if job.state is JobState.CANCELLED:
            return replace(ds, state="failed", error="manifest job cancelled")
        if job.state is JobState.FAILED:
            return replace(ds, state="failed", error=job.error or "manifest job failed")
        return ds

    def run_manifest(self, ctx: JobContext) -> dict[str, Any]:
        uid, version = ctx.params["uid"], int(ctx.params["version"])
        ds = self.get(uid)
        if ds.version != version:
            return {"superseded": True}
        endpoint, rel = split_location(ds.source)
        ctx.progress(task="hashing", task_percent=0.0, force=True)
        fs = self.endpoints.open(endpoint)
        done = {"files": 0, "bytes": 0}

        def on_file(size: int) -> None:
            done["files"] += 1
            done["bytes"] += size
            ctx.progress(task="hashing", files_done=done["files"], bytes_done=done["bytes"])

        try:
            files = manifests.compute(fs, rel, on_file)
        except TransientError:
            raise  # retried; if retries run out, _settled reads the job's failure
        except DataferryError as exc:  # a pipe or a bad name in the tree, a link out
            self._manifest_failed(uid, version, exc.message)
            raise
        except FileNotFoundError as exc:
            self._manifest_failed(uid, version, f"source vanished: {exc}")
            raise PermanentError(f"dataset {uid}: source vanished: {exc}") from exc
        except OSError as exc:
            raise TransientError(f"dataset {uid}: {exc}") from exc
        except ValueError as exc:
            self._manifest_failed(uid, version, str(exc))
            raise PermanentError(f"dataset {uid}: {exc}") from exc
        finally:
            fs.close()
        with self.db.session() as s:
            s.execute(
                update(DatasetRow)
                .where(DatasetRow.uid == uid, DatasetRow.version == version)
                .values(manifest=files, state="ready", error="", updated=utcnow())
            )
        count, size = manifests.totals(files)
        ctx.progress(task="done", task_percent=100.0, files_total=count, bytes_total=size)
        return {"files": count, "bytes": size}

    def _manifest_failed(self, uid: str, version: int, error: str) -> None:
        with self.db.session() as s:
            s.execute(
                update(DatasetRow)
                .where(DatasetRow.uid == uid, DatasetRow.version == version)
                .values(state="failed", error=error, updated=utcnow())
            )

    def mets(self, uid: str) -> bytes:
        from dataferry.datasets.mets import to_mets

        ds = self._ready(uid)
        return to_mets(ds.uid, ds.meta, ds.manifest)

    def _ready(self, uid: str) -> Dataset:
        ds = self.get(uid)
        if ds.state == "computing":
            raise TransientError(f"dataset {uid!r} is still being prepared (manifest job)")
        if ds.state != "ready":
            raise PermanentError(f"dataset {uid!r} could not be prepared: {ds.error}")
        return ds

    # -- announcing --------------------------------------------------------------------
    def broadcast(self, uid: str, site: str | None = None) -> builtins.list[dict[str, Any]]:
        """Notify every consumer site (or one); each accepts idempotently. Returns one
        result per site; a site that cannot be reached is reported, not fatal."""
        ds = self._ready(uid)
        targets = [self.sites.get(site)] if site else self.sites.list(role="consumer")
        if not targets:
            raise InvalidRequest("no consumer sites registered (dataferry site add ...)")
        body = {"uid": ds.uid, "version": ds.version, "meta": ds.meta}
        results = []
        for target in targets:
            try:
                with self._client(target.name) as peer:
                    answer = peer.json("POST", "/api/v1/synced-datasets", json=body)
                results.append({"site": target.name, "ok": True, "state": answer.get("state", "")})
            except DataferryError as exc:
                log.warning("broadcast of %r to %s failed: %s", uid, target.name, exc.message)
                results.append({"site": target.name, "ok": False, "error": exc.message})
        return results

    def _client(self, site: str) -> _Closing:
        access = self.sites.access(site)
        return _Closing(
            PeerClient(
                access,
                self.settings.site_name,
                verify=self.verify,
                timeout=self.settings.peer_timeout,
            )
        )

    # -- delivering --------------------------------------------------------------------
    def request_transfer(self, uid: str, site: str, inbound: str = "") -> dict[str, Any]:
        """A consumer asks for the files: one delivery job per dataset version, site and
        destination (asking again answers the same job; a failed one is restarted, keeping
        the files it already delivered)."""
        record = self.sites.check_consumer(self.sites.get(site))
        ds = self._ready(uid)
        inbound = inbound or record.inbound
        if not inbound:
            raise InvalidRequest(
                f"no inbound location for site {site!r}: send one, or register it with --inbound"
            )
        endpoint, rel = split_location(inbound)
        destination = f"{endpoint}:{join(rel, uid)}"
        with self.db.read() as s:
            existing = s.scalar(
                select(DeliveryRow).where(
                    DeliveryRow.uid == uid,
                    DeliveryRow.version == ds.version,
                    DeliveryRow.site == site,
                    DeliveryRow.destination == destination,
                )
            )
            job_id = existing.job_id if existing is not None else None
        if job_id is not None:
            job = self.jobs.get(job_id)
            if job.state in (JobState.FAILED, JobState.CANCELLED):
                job = self.jobs.retry(job_id)
            return self._delivery_doc(ds, job, destination)
        src_endpoint, src_rel = split_location(ds.source)
        params = {
            "source": f"{src_endpoint}:{src_rel}",
            "destination": f"{PEER_ENDPOINT}:{join(rel, uid)}",
            "mode": "copy",
            "checksum": "sha256",
            "overwrite": "always",
            "source_is_dir": "1",
            "peer_site": site,
            "peer_endpoint": endpoint,
            "uid": uid,
            "version": str(ds.version),
        }
        job = self.jobs.submit(DELIVERY_KIND, params)
        try:
            with self.db.session() as s:
                s.add(
                    DeliveryRow(
                        uid=uid,
                        version=ds.version,
                        site=site,
                        destination=destination,
                        job_id=job.id,
                    )
                )
        except IntegrityError:  # a concurrent request won: answer with its job
            self.jobs.cancel(job.id)
            return self.request_transfer(uid, site, inbound)
        return self._delivery_doc(ds, job, destination)

    @staticmethod
    def _delivery_doc(ds: Dataset, job: Job, destination: str) -> dict[str, Any]:
        return {
            "uid": ds.uid,
            "version": ds.version,
            "transfer_id": job.id,
            "destination": destination,
        }

    def transfer_status(self, uid: str, site: str, transfer_id: int) -> dict[str, Any]:
        """Where delivery ``transfer_id`` of ``uid`` to ``site`` stands, mapped from its
        job here for every door: ``{"status", "message"[, "transfer_id", "job"]}``.
        It never raises: no such transfer is "bad request", and a lookup that fails
        ("server error") is an answer too, which the consumer retries."""
        try:
            return self._transfer_status(uid, site, transfer_id)
        except DataferryError as exc:
            return {"status": Status.SERVER_ERROR, "message": exc.message}

    def _transfer_status(self, uid: str, site: str, transfer_id: int) -> dict[str, Any]:
        try:
            with self.db.read() as s:
                row = s.scalar(
                    select(DeliveryRow).where(
                        DeliveryRow.job_id == transfer_id,
                        DeliveryRow.uid == uid,
                        DeliveryRow.site == site,
                    )
                )
        except InvalidRequest:  # an id or uid the database cannot hold: no such transfer
            row = None
        if row is None:
            return {
                "status": Status.BAD_REQUEST,
                "message": f"no transfer {transfer_id} of dataset {uid!r} for site {site!r}",
            }
        job = self.jobs.get(transfer_id)
        doc = {"transfer_id": job.id, "job": job.document()}
        if job.state is JobState.SUCCEEDED:
            return {**doc, "status": Status.COMPLETE, "message": "all files delivered"}
        if job.state in (JobState.FAILED, JobState.CANCELLED):
            return {**doc, "status": Status.FAILED, "message": job.error or job.state.value}
        message = f"{job.state.value}: {job.files_done}/{job.files_total or '?'} files"
        return {**doc, "status": Status.IN_PROGRESS, "message": message}


class _Closing:
    def __init__(self, client: PeerClient) -> None:
        self.client = client

    def __enter__(self) -> PeerClient:
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()
