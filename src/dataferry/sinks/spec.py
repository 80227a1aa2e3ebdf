"""What a sink is made of, as validated input: the same model serves the config
file, the REST API and the CLI. Pure pydantic; no I/O."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataferry.durations import MAX_SECONDS, Seconds
from dataferry.urls import parse_base_url

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,127}$")
# HTTP (RFC 9110): a header name is a token; a value is visible ASCII, with spaces or
# tabs inside but not at either end. Anything else the HTTP client refuses at send time.
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
HEADER_VALUE_RE = re.compile(r"^(?:[\x21-\x7e](?:[\x20\x09\x21-\x7e]*[\x21-\x7e])?)?$")


class _Strict(BaseModel):
    # JSON has no infinity or NaN, but Python's parser reads them; they are refused.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class TableSource(_Strict):
    """A table in an application's own database. The sink reads it, sets ``last_sync``
    and deletes delivered deletions; it never changes the table's schema."""

    url: str = Field(..., description="SQLAlchemy URL of the database holding the table")
    name: str = Field(..., description="table name, optionally schema.table")
    key: str = Field(..., description="primary key column")
    modified: str = Field(..., description="column: time of the row's last change")
    deleted: str = Field(..., description="column: set (not null) when the row is deleted")
    last_sync: str = Field(..., description="column the sink sets after the partner accepted")
    where: str = Field(
        "", description="optional SQL condition selecting the rows to deliver (a row filter)"
    )

    @field_validator("key", "modified", "deleted", "last_sync")
    @classmethod
    def _ident(cls, value: str) -> str:
        if not IDENT_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not a column name")
        return value

    @field_validator("name")
    @classmethod
    def _table(cls, value: str) -> str:
        if not all(IDENT_RE.fullmatch(p) for p in value.split(".")) or value.count(".") > 1:
            raise ValueError(f"{value!r} is not a table name (table or schema.table)")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a table source needs the database URL")
        if "\x00" in value:
            raise ValueError("the database URL must not contain a NUL character")
        return value


class SourceSpec(_Strict):
    """Exactly one of ``collection`` (a dataferry collection) or ``table``."""

    collection: str | None = None
    table: TableSource | None = None

    @model_validator(mode="after")
    def _one(self) -> SourceSpec:
        if (self.collection is None) == (self.table is None):
            raise ValueError('give exactly one source: {"collection": NAME} or {"table": {...}}')
        if self.collection is not None and not NAME_RE.fullmatch(self.collection):
            raise ValueError(f"collection name {self.collection!r} is not valid")
        return self

    @property
    def label(self) -> str:
        """Identifies the source in idempotency keys: ``collection:NAME`` or ``table:NAME``."""
        if self.collection is not None:
            return f"collection:{self.collection}"
        assert self.table is not None
        return f"table:{self.table.name}"


class SinkSpec(_Strict):
    """A sink definition. ``api_key`` is write-only: stored sealed, never shown."""

    name: str
    source: SourceSpec
    url: str = Field("", description="partner URL; empty: the sink stays idle")
    headers: dict[str, str] = Field(
        default_factory=dict, description="extra request headers; '{api_key}' is replaced"
    )
    api_key: str = Field("", description="the partner's API key (stored encrypted)")
    mapping: dict[str, Any] | None = Field(
        None, description="payload mapping; none: the default document"
    )
    poll_interval: Seconds = Field(300.0, description="seconds between polls of the source")
    retry_interval: Seconds = Field(5.0, description="seconds before the first retry")
    retry_cap: Seconds = Field(600.0, description="longest wait between retries")
    give_up_after: int | None = Field(
        None, ge=1, description="failed attempts before a change goes to the dead letters"
    )
    concurrency: int = Field(8, ge=1, le=256, description="records delivered at once")
    timeout: Seconds = Field(30.0, description="seconds per request")
    accept: Literal["200", "2xx"] = Field("200", description="which answers count as delivered")
    paused: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.fullmatch(value):
            raise ValueError(f"sink name {value!r} must be 1-128 letters, digits, '.', '_' or '-'")
        return value

    @field_validator("url")
    @classmethod
    def _target(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        try:
            parse_base_url(value)  # the same rules as peer and site URLs
        except ValueError as exc:
            raise ValueError(
                f"target URL {value!r} must be http(s)://HOST[:PORT][/PATH]: {exc}"
            ) from None
        return value

    @model_validator(mode="after")
    def _retry(self) -> SinkSpec:
        if self.retry_cap < self.retry_interval:
            raise ValueError("retry_cap must be at least retry_interval")
        return self

    @model_validator(mode="after")
    def _headers(self) -> SinkSpec:
        for name, value in self.headers.items():
            if not HEADER_NAME_RE.fullmatch(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP header name")
            if not HEADER_VALUE_RE.fullmatch(value.replace("{api_key}", self.api_key)):
                raise ValueError(
                    f"header {name}: its value (with the api_key put in) must be visible ASCII"
                    " characters, spaces or tabs inside, no line breaks"
                )
        return self


class SinkSettings(_Strict):
    """Process-wide sink engine settings (``[sink]`` in the config file)."""

    lease_seconds: float = Field(
        120.0,
        gt=1,
        le=MAX_SECONDS,
        description="a change being sent is re-sent by anyone after this",
    )
    tick_seconds: Seconds = Field(1.0, description="longest sleep of the delivery loop")
