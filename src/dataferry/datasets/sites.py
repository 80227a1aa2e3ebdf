"""The sites registry: institutions we deliver datasets to or receive them from."""

from __future__ import annotations

import hmac
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dataferry.db.engine import Database
from dataferry.db.models import SiteRow
from dataferry.endpoints.paths import split_location
from dataferry.endpoints.secrets import SecretBox
from dataferry.errors import Conflict, Forbidden, InvalidRequest, NotFound
from dataferry.urls import parse_base_url

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
ROLES = ("provider", "consumer")
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
#: the header a peer names itself with; its bearer token must be that site's token
SITE_HEADER = "X-Dataferry-Site"


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, allow_insecure: bool) -> str:
    """A peer's base URL; plain HTTP only to loopback unless ``allow_insecure``."""
    try:
        parts = parse_base_url(url)
    except ValueError as exc:
        raise InvalidRequest(f"site URL {url!r} must be http(s)://HOST[:PORT]: {exc}") from None
    if parts.scheme == "http" and not allow_insecure and not is_loopback(parts.hostname or ""):
        raise InvalidRequest(
            f"site URL {url!r} is plain HTTP to a host that is not loopback: use https:// "
            "(or set datasets.allow_insecure_peers)"
        )
    return url.rstrip("/")


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    url: str
    role: str
    inbound: str
    created: str

    def document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "role": self.role,
            "inbound": self.inbound,
            "created": self.created,
        }


@dataclass(frozen=True, slots=True)
class SiteAccess:
    """What it takes to call a site: its URL and the token, in memory only."""

    name: str
    url: str
    token: str


class SiteService:
    def __init__(self, db: Database, box: SecretBox, allow_insecure: bool) -> None:
        self.db = db
        self.box = box
        self.allow_insecure = allow_insecure

    @staticmethod
    def _public(row: SiteRow) -> Site:
        return Site(row.name, row.url, row.role, row.inbound, row.created.isoformat())

    def add(
        self, name: str, url: str, token: str, role: str = "consumer", inbound: str = ""
    ) -> Site:
        if not NAME_RE.fullmatch(name):
            raise InvalidRequest(f"site name {name!r} must be 1-128 letters, digits, '_' or '-'")
        if role not in ROLES:
            raise InvalidRequest(f"role {role!r} is not one of: {', '.join(ROLES)}")
        if len(token) < 8:
            raise InvalidRequest("a site token must have at least 8 characters")
        if inbound:
            endpoint, path = split_location(inbound)
            inbound = f"{endpoint}:{path}"
        url = check_url(url, self.allow_insecure)
        row = SiteRow(name=name, url=url, token=self.box.seal({"token": token}), role=role)
        row.inbound = inbound
        try:
            with self.db.session() as s:
                if s.scalar(select(SiteRow.id).where(SiteRow.name == name)) is not None:
                    raise Conflict(f"site {name!r} already exists")
                s.add(row)
                s.flush()
                return self._public(row)
        except IntegrityError as exc:
            raise Conflict(f"site {name!r} already exists") from exc

    def list(self, role: str | None = None) -> list[Site]:
        with self.db.read() as s:
            q = select(SiteRow).order_by(SiteRow.name)
            if role is not None:
                q = q.where(SiteRow.role == role)
            return [self._public(r) for r in s.scalars(q)]

    def _row(self, s: Any, name: str) -> SiteRow:
        row = s.scalar(select(SiteRow).where(SiteRow.name == name))
        if row is None:
            raise NotFound(f"site {name!r} does not exist")
        assert isinstance(row, SiteRow)
        return row

    def get(self, name: str) -> Site:
        with self.db.read() as s:
            return self._public(self._row(s, name))

    def remove(self, name: str) -> None:
        with self.db.session() as s:
            s.delete(self._row(s, name))

    @staticmethod
    def check_consumer(site: Site) -> Site:
        """``site`` if it may ask for our datasets: only a site registered as a
        consumer. A provider site sends us datasets; its token does not take ours."""
        if site.role != "consumer":
            raise Forbidden(
                f"site {site.name!r} is registered here as a {site.role} (it sends us "
                "datasets): only a consumer site may ask for ours"
            )
        return site

    def access(self, name: str) -> SiteAccess:
        """URL and token to call ``name`` (the URL re-checked against the HTTPS rule)."""
        with self.db.read() as s:
            row = self._row(s, name)
            url, sealed = row.url, row.token
        return SiteAccess(name, check_url(url, self.allow_insecure), self.box.open(sealed)["token"])

    def authenticate(self, name: str, presented: str) -> Site:
        """The site a peer request comes from; :class:`Forbidden` for an unknown site or
        a wrong token (the same answer for both, so names cannot be probed)."""
        with self.db.read() as s:
            row = s.scalar(select(SiteRow).where(SiteRow.name == name)) if name else None
            if row is None:
                # compare anyway: the time taken does not tell whether the site exists
                hmac.compare_digest(b"x" * 32, presented.encode())
                raise Forbidden("unknown site or wrong token")
            site, sealed = self._public(row), row.token
        if not presented or not hmac.compare_digest(
            self.box.open(sealed)["token"].encode(), presented.encode()
        ):
            raise Forbidden("unknown site or wrong token")
        return site
