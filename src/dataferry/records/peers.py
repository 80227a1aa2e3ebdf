"""The peer table: other dataferry instances this one syncs with. Tokens are
sealed with the instance's secret key and never leave the service."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dataferry.db.base import utcnow
from dataferry.db.engine import Database
from dataferry.db.models import PeerRow
from dataferry.endpoints.secrets import SecretBox
from dataferry.errors import Conflict, InvalidRequest, NotFound
from dataferry.records.model import check_collection
from dataferry.urls import parse_base_url

NAME_MAX = 128


@dataclass(frozen=True, slots=True)
class Peer:
    name: str
    url: str
    instance_id: str
    epoch: str
    owner: str
    contact: str
    collections: list[str]
    interval_seconds: int
    last_sync: datetime | None
    last_attempt: datetime | None
    sync_count: int
    last_error: str
    created: datetime

    @classmethod
    def from_row(cls, row: PeerRow) -> Peer:
        return cls(
            row.name,
            row.url,
            row.instance_id,
            row.epoch,
            row.owner,
            row.contact,
            [c for c in row.collections.split(",") if c],
            row.interval_seconds,
            row.last_sync,
            row.last_attempt,
            row.sync_count,
            row.last_error,
            row.created,
        )

    def document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "instance_id": self.instance_id,
            "epoch": self.epoch,
            "owner": self.owner,
            "contact": self.contact,
            "collections": self.collections,
            "interval_seconds": self.interval_seconds,
            "last_sync": self.last_sync.isoformat() if self.last_sync else None,
            "last_attempt": self.last_attempt.isoformat() if self.last_attempt else None,
            "sync_count": self.sync_count,
            "last_error": self.last_error,
            "created": self.created.isoformat(),
        }


def check_url(url: str) -> str:
    try:
        parse_base_url(url)
    except ValueError as exc:
        raise InvalidRequest(f"peer URL {url!r} must be http(s)://HOST[:PORT]: {exc}") from None
    return url.rstrip("/")


class PeerService:
    def __init__(self, db: Database, box: SecretBox, default_interval: float) -> None:
        self.db = db
        self.box = box
        self.default_interval = int(default_interval)

    def add(
        self,
        name: str,
        url: str,
        token: str = "",
        collections: list[str] | None = None,
        interval_seconds: int | None = None,
    ) -> Peer:
        if not name or len(name) > NAME_MAX or "/" in name or not name.isprintable():
            raise InvalidRequest(
                f"peer name {name!r} must be 1-{NAME_MAX} printable characters, no '/'"
            )
        url = check_url(url)
        cols = [check_collection(c) for c in collections or []]
        interval = self.default_interval if interval_seconds is None else interval_seconds
        if interval < 0:
            raise InvalidRequest("interval must not be negative (0: only on demand)")
        try:
            with self.db.session() as s:
                row = PeerRow(
                    name=name,
                    url=url,
                    token=self.box.seal({"token": token}) if token else "",
                    collections=",".join(cols),
                    interval_seconds=interval,
                    created=utcnow(),
                )
                s.add(row)
                s.flush()
                return Peer.from_row(row)
        except IntegrityError:
            raise Conflict(f"a peer named {name!r} already exists") from None

    def list(self) -> list[Peer]:
        with self.db.read() as s:
            return [Peer.from_row(r) for r in s.scalars(select(PeerRow).order_by(PeerRow.name))]

    def get(self, name: str) -> Peer:
        with self.db.read() as s:
            row = s.scalar(select(PeerRow).where(PeerRow.name == name))
            if row is None:
                raise NotFound(f"peer {name!r} does not exist")
            return Peer.from_row(row)

    def token(self, name: str) -> str:
        with self.db.read() as s:
            sealed = s.scalar(select(PeerRow.token).where(PeerRow.name == name))
        if sealed is None:
            raise NotFound(f"peer {name!r} does not exist")
        return self.box.open(sealed).get("token", "") if sealed else ""

    def remove(self, name: str) -> None:
        with self.db.session() as s:
            row = s.scalar(select(PeerRow).where(PeerRow.name == name))
            if row is None:
                raise NotFound(f"peer {name!r} does not exist")
            s.delete(row)

    def attempted(self, name: str) -> None:
        with self.db.session() as s:
            row = s.scalar(select(PeerRow).where(PeerRow.name == name))
            if row is not None:
                row.last_attempt = utcnow()

    def identified(self, name: str, hello: dict[str, Any]) -> None:
        """Store what the peer says about itself (instance id, epoch, owner, contact),
        as ``replication.check_hello`` found it."""
        with self.db.session() as s:
            row = s.scalar(select(PeerRow).where(PeerRow.name == name))
            if row is not None:
                row.instance_id = hello["instance_id"]
                row.epoch = hello.get("epoch", "")
                row.owner = hello.get("owner", "")
                row.contact = hello.get("contact", "")

    def succeeded(self, name: str) -> None:
        with self.db.session() as s:
            row = s.scalar(select(PeerRow).where(PeerRow.name == name))
            if row is not None:
                row.last_sync = utcnow()
                row.sync_count += 1
                row.last_error = ""

    def failed(self, name: str, error: str) -> None:
        with self.db.session() as s:
            row = s.scalar(select(PeerRow).where(PeerRow.name == name))
            if row is not None:
                row.last_error = error[:2000]

    def due(self, now: datetime) -> builtins.list[str]:
        """Peers whose scheduled sync is due (never attempted, or interval elapsed)."""
        out = []
        for p in self.list():
            if p.interval_seconds <= 0:
                continue
            if (
                p.last_attempt is None
                or (now - p.last_attempt).total_seconds() >= p.interval_seconds
            ):
                out.append(p.name)
        return out
