"""The consumer side: datasets announced to us, each driven through the state machine
(:mod:`dataferry.datasets.states`) by the scheduler tick. Every step reads the row,
does its I/O, and stores the outcome only if nobody moved the dataset meanwhile
(``revision``), so a killed process or two processes on one database lose nothing."""

from __future__ import annotations

import builtins
import logging
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import defer

from dataferry.config import DatasetSettings
from dataferry.datasets import receipts
from dataferry.datasets.manifest import sha256_of
from dataferry.datasets.peer import PeerClient
from dataferry.datasets.provider import Status, check_announced_uid
from dataferry.datasets.sites import SiteService
from dataferry.datasets.states import FINAL, POLLING, Event, Outcome, Refused, State, decide
from dataferry.db.base import utcnow
from dataferry.db.engine import Database
from dataferry.db.models import SyncedDatasetEventRow, SyncedDatasetRow
from dataferry.endpoints.paths import join, split_location
from dataferry.endpoints.service import EndpointService
from dataferry.errors import Conflict, DataferryError, InvalidRequest, NotFound, TransientError
from dataferry.jobs.backoff import backoff_delay
from dataferry.jobs.store import rowcount

log = logging.getLogger(__name__)

MAX_NAMED = 20  # mismatches named in a reason; the rest are counted


@dataclass(frozen=True, slots=True)
class SyncedDataset:
    uid: str
    site: str
    state: State
    meta: dict[str, Any]
    manifest: list[dict[str, Any]]
    version: int
    destination: str
    transfer_id: int | None
    retries: int
    next_at: datetime | None
    message: str
    revision: int
    created: datetime
    updated: datetime

    @classmethod
    def from_row(cls, row: SyncedDatasetRow, manifest: bool = True) -> SyncedDataset:
        return cls(
            row.uid,
            row.site,
            State(row.state),
            dict(row.meta or {}),
            list(row.manifest or []) if manifest else [],
            row.version,
            row.destination,
            row.transfer_id,
            row.retries,
            row.next_at,
            row.message,
            row.revision,
            row.created,
            row.updated,
        )

    def document(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "site": self.site,
            "state": self.state.value,
            "meta": self.meta,
            "version": self.version,
            "files": len(self.manifest),
            "bytes": sum(int(f["size"]) for f in self.manifest),
            "destination": self.destination,
            "transfer_id": self.transfer_id,
            "retries": self.retries,
            "next_at": self.next_at.isoformat() if self.next_at else None,
            "message": self.message,
            "created": self.created.isoformat(),
            "updated": self.updated.isoformat(),
        }


class ConsumerService:
    def __init__(
        self,
        db: Database,
        sites: SiteService,
        endpoints: EndpointService,
        settings: DatasetSettings,
        verify: ssl.SSLContext | bool,
    ) -> None:
        self.db = db
        self.sites = sites
        self.endpoints = endpoints
        self.settings = settings
        self.verify = verify
        self._tick_lock = threading.Lock()

    # -- what front doors call ---------------------------------------------------------
    def notify(self, site: str, uid: str, version: int, meta: dict[str, Any]) -> SyncedDataset:
        """A provider announces a dataset: registered once; announcing again changes nothing."""
        check_announced_uid(uid)
        with self.db.session() as s:
            row = s.scalar(select(SyncedDatasetRow).where(SyncedDatasetRow.uid == uid))
            if row is not None:
                if row.site != site:
                    raise Conflict(f"dataset {uid!r} comes from site {row.site!r}, not {site!r}")
                return SyncedDataset.from_row(row)
            now = utcnow()
            row = SyncedDatasetRow(
                uid=uid,
                site=site,
                state=State.REGISTERED.value,
                meta={str(k): str(v) for k, v in meta.items()},
                manifest=[],
                version=version,
                destination="",
                retries=0,
                next_at=now,
                message=f"announced by {site}",
                revision=0,
                created=now,
                updated=now,
            )
            s.add(row)
            s.add(
                SyncedDatasetEventRow(
                    uid=uid, from_state="", to_state=State.REGISTERED.value, reason=row.message
                )
            )
            s.flush()
            return SyncedDataset.from_row(row)

    def get(self, uid: str, manifest: bool = True) -> SyncedDataset:
        """The dataset; without ``manifest`` its files are not read (left empty)."""
        q = select(SyncedDatasetRow).where(SyncedDatasetRow.uid == uid)
        if not manifest:
            q = q.options(defer(SyncedDatasetRow.manifest))
        with self.db.read() as s:
            row = s.scalar(q)
            if row is None:
                raise NotFound(f"synced dataset {uid!r} does not exist")
            return SyncedDataset.from_row(row, manifest)

    def list(self, state: str | None = None) -> list[SyncedDataset]:
        if state is not None and state not in {s.value for s in State}:
            raise InvalidRequest(
                f"unknown state {state!r}; one of: {', '.join(s.value for s in State)}"
            )
        with self.db.read() as s:
            q = select(SyncedDatasetRow).order_by(SyncedDatasetRow.uid)
            if state is not None:
                q = q.where(SyncedDatasetRow.state == state)
            return [SyncedDataset.from_row(r) for r in s.scalars(q)]

    def history(self, uid: str) -> builtins.list[dict[str, Any]]:
        self.get(uid)
        with self.db.read() as s:
            rows = s.scalars(
                select(SyncedDatasetEventRow)
                .where(SyncedDatasetEventRow.uid == uid)
                .order_by(SyncedDatasetEventRow.id)
            )
            return [
                {"at": r.at.isoformat(), "from": r.from_state, "to": r.to_state, "reason": r.reason}
                for r in rows
            ]

    def restart(self, uid: str) -> SyncedDataset:
        """An operator's restart of a failed dataset: back to ``registered``, retries
        reset; the manifest is fetched again (the provider may have re-published)."""
        ds = self.get(uid)
        try:
            check_announced_uid(uid)
        except InvalidRequest:  # the next tick would fail it again (step): no use
            raise Conflict(
                f"dataset {uid!r} cannot be restarted: its UID is not <site-prefix>.<id> "
                "(letters, digits, '.', '_', '-'), so no request to the provider can name it"
            ) from None
        try:
            outcome = decide(ds.state, Event.RESTART, ds.retries, self.settings.max_retries)
        except Refused as exc:
            raise Conflict(
                f"dataset {uid!r} is {ds.state.value}: only a failed one restarts"
            ) from exc
        if not self._move(ds, outcome, "restarted by an operator", transfer_id=None):
            raise Conflict(f"dataset {uid!r} changed meanwhile; try again")
        return self.get(uid)

    def forget(self, uid: str) -> None:
        """Remove a finished dataset's record and history (its delivered files stay
        where they are): a complete or permanently failed one only, so no tick is
        moving it. Announced again later, it starts afresh."""
        ds = self.get(uid, manifest=False)
        if ds.state not in FINAL:
            raise Conflict(
                f"dataset {uid!r} is {ds.state.value}: only a complete or permanently "
                "failed dataset can be forgotten"
            )
        finished = [state.value for state in FINAL]
        with self.db.session() as s:
            gone = s.execute(
                delete(SyncedDatasetRow).where(
                    SyncedDatasetRow.uid == uid, SyncedDatasetRow.state.in_(finished)
                )
            )
            if rowcount(gone) != 1:
                raise Conflict(f"dataset {uid!r} changed meanwhile; try again")
            s.execute(delete(SyncedDatasetEventRow).where(SyncedDatasetEventRow.uid == uid))
        log.info("synced dataset %r forgotten by an operator", uid)

    # -- the tick ------------------------------------------------------------------------
    def tick(self) -> int:
        """Advance every due, non-final dataset by one step; returns how many moved."""
        if not self._tick_lock.acquire(blocking=False):
            return 0  # the previous tick is still working (a long integrity check)
        try:
            now = utcnow()
            with self.db.read() as s:
                uids = list(
                    s.scalars(
                        select(SyncedDatasetRow.uid)
                        .where(
                            SyncedDatasetRow.state.not_in([st.value for st in FINAL]),
                            or_(
                                SyncedDatasetRow.next_at.is_(None), SyncedDatasetRow.next_at <= now
                            ),
                        )
                        .order_by(SyncedDatasetRow.next_at)
                    )
                )
            moved = 0
            for uid in uids:
                try:
                    moved += int(self.step(uid))
                except Exception:
                    log.exception("synced dataset %r: step failed; the next tick tries again", uid)
            return moved
        finally:
            self._tick_lock.release()

    def step(self, uid: str) -> bool:
        # Only the integrity check needs the manifest: decoding thousands of files at
        # every poll (each tick) would take the CPU a delivery needs.
        ds = self.get(uid, manifest=False)
        if ds.state is State.CHECKING_INTEGRITY:
            ds = self.get(uid)
        if ds.state in FINAL:
            return False
        try:
            check_announced_uid(ds.uid)
        except InvalidRequest as exc:  # stored before notify checked UIDs (0c829ea)
            reason = f"cannot be asked for (stored before notify checked UIDs): {exc.message}"
            return self._apply(ds, Event.UID_UNUSABLE, reason)
        if ds.state is State.REGISTERED:
            return self._request(ds)
        if ds.state in POLLING:
            return self._poll(ds)
        if ds.state is State.CHECKING_INTEGRITY:
            return self._check(ds)
        if ds.state is State.FAILED_RETRYABLE:
            return self._apply(ds, Event.RETRY_DUE, "backoff over: trying again", transfer_id=None)
        return False

    # -- steps ---------------------------------------------------------------------------
    def _client(self, site: str) -> PeerClient:
        return PeerClient(
            self.sites.access(site),
            self.settings.site_name,
            verify=self.verify,
            timeout=self.settings.peer_timeout,
        )

    def _request(self, ds: SyncedDataset) -> bool:
        try:
            site = self.sites.get(ds.site)
            client = self._client(ds.site)
        except DataferryError as exc:
            return self._apply(ds, Event.REQUEST_REJECTED, f"site {ds.site!r}: {exc.message}")
        try:
            info = client.json("GET", f"/api/v1/datasets/{ds.uid}")
            body = {"inbound": site.inbound} if site.inbound else {}
            answer = client.json("POST", f"/api/v1/datasets/{ds.uid}/transfer-requests", json=body)
        except TransientError as exc:
            return self._apply(ds, Event.REQUEST_FAILED, f"requesting the transfer: {exc.message}")
        except DataferryError as exc:
            return self._apply(ds, Event.REQUEST_REJECTED, f"request refused: {exc.message}")
        finally:
            client.close()
        try:
            split_location(str(answer.get("destination", "")))
        except InvalidRequest as exc:
            return self._apply(ds, Event.REQUEST_REJECTED, f"provider's destination: {exc.message}")
        return self._apply(
            ds,
            Event.REQUEST_ACCEPTED,
            f"transfer {answer['transfer_id']} requested (version {answer['version']})",
            transfer_id=int(answer["transfer_id"]),
            destination=str(answer["destination"]),
            manifest=list(info.get("manifest") or []),
            version=int(answer["version"]),
            meta=dict(info.get("meta") or ds.meta),
        )

    def _poll(self, ds: SyncedDataset) -> bool:
        path = f"/api/v1/datasets/{ds.uid}/transfer-status"
        try:
            with_client = self._client(ds.site)
        except DataferryError as exc:
            return self._apply(ds, Event.POLL_RAISED, f"status poll: {exc.message}")
        try:
            response = with_client.http.get(path, params={"transfer_id": ds.transfer_id})
            try:
                doc = response.json()
            except ValueError:
                doc = {}
        except httpx.HTTPError as exc:
            return self._apply(ds, Event.POLL_RAISED, f"status poll raised: {exc!r}")
        finally:
            with_client.close()
        status = str(doc.get("status", ""))
        message = str(doc.get("message") or doc.get("detail") or "")
        if response.status_code >= 500:
            status = Status.SERVER_ERROR
        elif response.status_code >= 400:
            status = Status.BAD_REQUEST
        event = {
            Status.COMPLETE: Event.STATUS_COMPLETE,
            Status.IN_PROGRESS: Event.STATUS_IN_PROGRESS,
            Status.FAILED: Event.STATUS_FAILED,
            Status.BAD_REQUEST: Event.STATUS_BAD_REQUEST,
            Status.SERVER_ERROR: Event.STATUS_SERVER_ERROR,
        }.get(status, Event.STATUS_SERVER_ERROR)
        if event is Event.STATUS_IN_PROGRESS and ds.state is State.IN_PROGRESS:
            self._touch(ds, message)  # nothing new: wait for the next poll
            return False
        reason = f"provider says {status or 'something unreadable'}: {message}".rstrip(": ")
        return self._apply(ds, event, reason)

    def _check(self, ds: SyncedDataset) -> bool:
        try:
            problems = self.verify_files(ds)
        except TransientError as exc:
            self._touch(ds, f"integrity check postponed: {exc.message}", later=True)
            return False
        if problems:
            named = "; ".join(problems[:MAX_NAMED])
            more = f" (and {len(problems) - MAX_NAMED} more)" if len(problems) > MAX_NAMED else ""
            return self._apply(
                ds,
                Event.INTEGRITY_FAILED,
                f"{len(problems)} of {len(ds.manifest)} files do not match: {named}{more}",
            )
        return self._apply(
            ds, Event.INTEGRITY_OK, f"all {len(ds.manifest)} files match the manifest"
        )

    def verify_files(self, ds: SyncedDataset) -> builtins.list[str]:
        """Every manifest file at the destination, by size and sha256; one line per
        mismatch naming the file. A file's sha256 is the one taken as its bytes
        arrived while the file is unchanged since (``receipts``), else it is read."""
        reread = self.settings.integrity_reread
        try:
            endpoint, rel = split_location(ds.destination)
            fs = self.endpoints.open(endpoint)
        except DataferryError as exc:
            return [f"destination {ds.destination!r}: {exc.message}"]

        def one(entry: dict[str, Any]) -> str | None:
            path = str(entry["path"])
            full = fs.full(join(rel, path))
            try:
                size = fs.size(full)
            except FileNotFoundError:
                return f"{path}: missing"
            if size != int(entry["size"]):
                return f"{path}: size {size} != {entry['size']}"
            digest = None if reread else receipts.recorded(fs, full)
            if digest is None:
                digest = sha256_of(fs, full)[1]
            if digest != entry["sha256"]:
                return f"{path}: sha256 {digest} != {entry['sha256']}"
            return None

        try:
            with ThreadPoolExecutor(4, "integrity") as pool:
                results = list(pool.map(one, ds.manifest))
        except OSError as exc:
            raise TransientError(f"reading {ds.destination}: {exc}") from exc
        finally:
            fs.close()
        return [r for r in results if r is not None]

    # -- storing outcomes ----------------------------------------------------------------
    def _apply(self, ds: SyncedDataset, event: Event, reason: str, **fields: Any) -> bool:
        try:
            outcome = decide(ds.state, event, ds.retries, self.settings.max_retries)
        except Refused:
            log.warning("synced dataset %r: %s refused in %s", ds.uid, event.value, ds.state.value)
            return False
        if outcome.exhausted:
            reason = f"{reason}; retries exhausted ({self.settings.max_retries})"
        elif outcome.backoff:
            reason = f"{reason} (retry {outcome.retries} of {self.settings.max_retries})"
        return self._move(ds, outcome, reason, **fields)

    def _next_at(self, outcome: Outcome) -> datetime | None:
        now = utcnow()
        if outcome.state in FINAL:
            return None
        if outcome.backoff:
            delay = backoff_delay(
                max(outcome.retries, 1), self.settings.backoff_base, self.settings.backoff_cap
            )
            return now + timedelta(seconds=delay)
        if outcome.state in POLLING:
            return now + timedelta(seconds=self.settings.poll_seconds)
        return now

    def _move(self, ds: SyncedDataset, outcome: Outcome, reason: str, **fields: Any) -> bool:
        now = utcnow()
        with self.db.session() as s:
            done = s.execute(
                update(SyncedDatasetRow)
                .where(SyncedDatasetRow.uid == ds.uid, SyncedDatasetRow.revision == ds.revision)
                .values(
                    state=outcome.state.value,
                    retries=outcome.retries,
                    next_at=self._next_at(outcome),
                    message=reason,
                    revision=ds.revision + 1,
                    updated=now,
                    **fields,
                )
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                return False  # another process moved it first
            s.add(
                SyncedDatasetEventRow(
                    uid=ds.uid,
                    from_state=ds.state.value,
                    to_state=outcome.state.value,
                    reason=reason,
                    at=now,
                )
            )
        level = logging.WARNING if outcome.state is State.FAILED_PERMANENT else logging.INFO
        log.log(
            level,
            "synced dataset %s: %s -> %s: %s",
            ds.uid,
            ds.state.value,
            outcome.state.value,
            reason,
        )
        if outcome.state in FINAL and outcome.state is not ds.state:
            self._notify(ds.uid, outcome.state, reason)
        return True

    def _touch(self, ds: SyncedDataset, message: str, later: bool = False) -> None:
        delay = self.settings.poll_seconds * (4 if later else 1)
        with self.db.session() as s:
            s.execute(
                update(SyncedDatasetRow)
                .where(SyncedDatasetRow.uid == ds.uid, SyncedDatasetRow.revision == ds.revision)
                .values(next_at=utcnow() + timedelta(seconds=delay), message=message)
            )

    def _notify(self, uid: str, state: State, reason: str) -> None:
        """The log always; the webhook if configured (best effort: a webhook that is down
        must not hold the state machine back)."""
        log.warning("synced dataset %r is %s: %s", uid, state.value, reason)
        url = self.settings.webhook_url
        if not url:
            return
        body = {
            "event": f"dataset.{state.value}",
            "uid": uid,
            "state": state.value,
            "reason": reason,
        }
        try:
            httpx.post(url, json=body, timeout=10, verify=self.verify).raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("webhook %s for dataset %r failed: %s", url, uid, exc)
