"""The endpoint registry's operations, for every front door."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dataferry.db.engine import Database
from dataferry.db.models import EndpointRow
from dataferry.endpoints import protocols
from dataferry.endpoints.filesystem import EndpointFS
from dataferry.endpoints.secrets import SecretBox
from dataferry.errors import Conflict, InvalidRequest, NotFound

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An endpoint as the outside world may see it: secret names, never values."""

    name: str
    url: str
    options: dict[str, Any]
    secret_keys: tuple[str, ...]
    created: str

    def document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "protocol": protocols.parse_url(self.url).scheme,
            "options": self.options,
            "secrets": list(self.secret_keys),
            "created": self.created,
        }


class EndpointService:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box

    def _public(self, row: EndpointRow) -> Endpoint:
        return Endpoint(
            name=row.name,
            url=row.url,
            options=dict(row.options or {}),
            secret_keys=tuple(sorted(self.box.open(row.secrets))),
            created=row.created.isoformat(),
        )

    def add(
        self,
        name: str,
        url: str,
        options: dict[str, Any] | None = None,
        secrets: dict[str, str] | None = None,
    ) -> Endpoint:
        if not NAME_RE.fullmatch(name):
            raise InvalidRequest(
                f"endpoint name {name!r} must be 1-128 letters, digits, '.', '_' or '-'"
            )
        options = dict(options or {})
        secrets = dict(secrets or {})
        overlap = set(options) & set(secrets)
        if overlap:
            raise InvalidRequest(f"keys given both as option and secret: {sorted(overlap)}")
        canonical = protocols.check(url, options, secrets)
        row = EndpointRow(name=name, url=canonical, options=options, secrets=self.box.seal(secrets))
        try:
            with self.db.session() as s:
                if s.scalar(select(EndpointRow.id).where(EndpointRow.name == name)) is not None:
                    raise Conflict(f"endpoint {name!r} already exists")
                s.add(row)
                s.flush()
                return self._public(row)
        except IntegrityError as exc:
            raise Conflict(f"endpoint {name!r} already exists") from exc

    def list(self) -> list[Endpoint]:
        with self.db.read() as s:
            return [
                self._public(r) for r in s.scalars(select(EndpointRow).order_by(EndpointRow.name))
            ]

    def _row(self, s: Any, name: str) -> EndpointRow:
        row = s.scalar(select(EndpointRow).where(EndpointRow.name == name))
        if row is None:
            raise NotFound(f"endpoint {name!r} does not exist")
        assert isinstance(row, EndpointRow)
        return row

    def get(self, name: str) -> Endpoint:
        with self.db.read() as s:
            return self._public(self._row(s, name))

    def remove(self, name: str) -> None:
        with self.db.session() as s:
            s.delete(self._row(s, name))

    def open(self, name: str) -> EndpointFS:
        """The endpoint's filesystem, with its secrets decrypted only in memory."""
        with self.db.read() as s:
            row = self._row(s, name)
            url, options, sealed = row.url, dict(row.options or {}), row.secrets
        return protocols.open_fs(name, url, options, self.box.open(sealed))
