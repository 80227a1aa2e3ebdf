"""Settings: embedded defaults, an optional TOML file, ``DATAFERRY_*`` environment.

Precedence, highest first: explicit keyword arguments, environment variables
(``DATAFERRY_PORT``; nested keys with ``__``, e.g. ``DATAFERRY_TRANSFER__CONCURRENCY``),
the TOML file named by ``DATAFERRY_CONFIG`` (the CLI's ``--config`` sets it),
then the defaults below. Settings are frozen once read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from dataferry.durations import MAX_SECONDS, Seconds
from dataferry.sinks.spec import SinkSettings, SinkSpec

CONFIG_ENV = "DATAFERRY_CONFIG"


def default_home() -> Path:
    """The data directory: ``DATAFERRY_HOME`` or the user's data dir."""
    env = os.environ.get("DATAFERRY_HOME")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("dataferry"))


class _Section(BaseModel):
    # allow_inf_nan: no setting means anything with NaN or an infinity.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


#: the longest a finished job may be kept before it is pruned (100 years; 0: for ever)
MAX_KEEP_DAYS = 36500.0


class JobSettings(_Section):
    workers: int = Field(
        4, ge=0, le=256, description="inline executor threads; 0: this process runs no jobs"
    )
    max_attempts: int = Field(5, ge=1, description="attempts before a transient error fails a job")
    backoff_base: Seconds = Field(2.0, description="seconds before the first retry")
    backoff_cap: Seconds = Field(300.0, description="longest wait between retries")
    lease_seconds: float = Field(
        30.0, gt=1, le=MAX_SECONDS, description="a running job's lease; renewed by heartbeats"
    )
    tick_seconds: Seconds = Field(2.0, description="scheduler tick period")
    progress_interval: float = Field(
        0.5, ge=0, le=MAX_SECONDS, description="least seconds between stored progress updates"
    )
    keep_finished_days: float = Field(
        0,
        ge=0,
        le=MAX_KEEP_DAYS,
        description="finished jobs (succeeded, failed, cancelled) of transfer, move, ala and "
        "records-sync kinds are deleted, with their per-file rows, this many days after "
        "they ended; 0: kept for ever",
    )


class TransferSettings(_Section):
    concurrency: int = Field(8, ge=1, le=64, description="files copied in parallel per job")
    chunk_size: int = Field(8 * 1024 * 1024, ge=4096, description="bytes per read/write")
    verify_readback: bool = Field(
        False, description="re-read each written file and compare its checksum again"
    )
    bandwidth_limit: int = Field(
        0, ge=0, description="bytes per second each transfer job may move (0: no limit)"
    )
    resume_min_bytes: int = Field(
        64 * 1024 * 1024,
        ge=0,
        description="files at least this large resume from their last verified byte "
        "after an interruption (where both protocols allow it)",
    )


class IngestSettings(_Section):
    archive_endpoint: str = Field(
        "", description="endpoint that receives ingested files; default: the folder <home>/archive"
    )
    staging_endpoint: str = Field("", description="endpoint whose files POST /move ingests")
    spool_dir: str = Field("", description="where uploads are spooled; default <home>/spool/ingest")
    max_upload_bytes: int = Field(
        1024**4, ge=1, description="largest request body accepted by /upload and /ingest"
    )
    max_unpacked_bytes: int = Field(
        1024**4, ge=1, description="largest tar a compressed bundle may expand to"
    )
    max_compression_ratio: float = Field(
        200.0, gt=1, description="largest expansion of a compressed bundle (unpacked/packed)"
    )
    max_members: int = Field(1_000_000, ge=1, description="most members a bundle may hold")
    allowed_projects: list[str] = Field(default_factory=list, description="empty: any")
    allowed_instruments: list[str] = Field(default_factory=list, description="empty: any")
    allowed_submitters: list[str] = Field(default_factory=list, description="empty: any")
    required_fields: list[str] = Field(
        default_factory=list, description="e.g. Transactions.project; must be present"
    )
    required_keys: list[str] = Field(
        default_factory=list, description="TransactionKeyValue keys that must be present"
    )
    policy_url: str = Field(
        "", description='external policy: receives the metadata, must answer {"status": "success"}'
    )
    policy_timeout: Seconds = Field(30.0, description="seconds to wait for the policy URL")
    chunk_size: int = Field(1024 * 1024, ge=4096, description="bytes per read/write")


class CelerySettings(_Section):
    """Scale-out: ``executor = "celery"`` dispatches jobs to Celery workers."""

    queue_prefix: str = Field(
        "dataferry",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="broker queues are named <prefix>.<job queue>, and <prefix>.tick",
    )
    concurrency: dict[str, int] = Field(
        default_factory=lambda: {"transfers": 4},
        description="jobs run at once per job queue by one `dataferry worker`",
    )
    default_concurrency: int = Field(
        2, ge=1, le=256, description="concurrency of a queue not named in `concurrency`"
    )
    redispatch_seconds: Seconds = Field(
        60.0,
        description="a job still queued this long is sent to the broker again by the tick",
    )
    visibility_timeout: Seconds = Field(
        3600.0,
        description="Redis: seconds before an unacknowledged message is redelivered",
    )
    publish_timeout: Seconds = Field(
        2.0,
        description="seconds a dispatch may wait for the broker before giving up",
    )

    @model_validator(mode="after")
    def _check_concurrency(self) -> CelerySettings:
        for queue, n in self.concurrency.items():
            if not 1 <= n <= 256:
                raise ValueError(f"celery.concurrency.{queue} must be between 1 and 256, not {n}")
        return self

    def concurrency_of(self, queue: str) -> int:
        return self.concurrency.get(queue, self.default_concurrency)

    def broker_queue(self, queue: str) -> str:
        return f"{self.queue_prefix}.{queue}"

    @property
    def tick_queue(self) -> str:
        return f"{self.queue_prefix}.tick"


# The longest owner or contact an instance says it has, and takes from a peer.
OWNER_MAX = 256


class RecordSettings(_Section):
    max_drift_seconds: Seconds = Field(
        300.0,
        description="reject peer changes stamped further than this in the future",
    )
    conflict_log_max: int = Field(
        10000, ge=1, description="conflict log entries kept per collection"
    )
    batch_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="replication batch size bound, in bytes"
    )
    batch_records: int = Field(5000, ge=1, le=100000, description="records per replication batch")
    sync_interval: float = Field(
        300.0,
        ge=0,
        le=MAX_SECONDS,
        description="default seconds between scheduled syncs with a peer (0: never)",
    )
    discovery: bool = Field(False, description="announce and browse over mDNS/DNS-SD")
    owner: str = Field(
        "", max_length=OWNER_MAX, description="who runs this instance (shown to peers)"
    )
    contact: str = Field(
        "", max_length=OWNER_MAX, description="how to reach the owner (shown to peers)"
    )

    @model_validator(mode="after")
    def _check_shown(self) -> RecordSettings:
        # Peers refuse a hello whose owner or contact is not printable (they print it).
        for key in ("owner", "contact"):
            if not getattr(self, key).isprintable():
                raise ValueError(f"records.{key} must be printable text (no control characters)")
        return self


class DatasetSettings(_Section):
    site_name: str = Field(
        "",
        description="this instance's site name: what peers register it as, and the prefix of "
        "the dataset UIDs it publishes",
    )
    allow_insecure_peers: bool = Field(
        False, description="allow plain HTTP to and from peers that are not on loopback"
    )
    peer_ca_file: str = Field("", description="CA bundle to verify peers' HTTPS certificates")
    webhook_url: str = Field(
        "", description="POSTed a JSON event when a synced dataset completes or fails for good"
    )
    max_retries: int = Field(10, ge=0, description="consumer retries before failed_permanent")
    backoff_base: Seconds = Field(2.0, description="seconds before a consumer's first retry")
    backoff_cap: Seconds = Field(300.0, description="longest wait between consumer retries")
    poll_seconds: Seconds = Field(
        5.0,
        description="how often a consumer asks a provider about a transfer",
    )
    peer_timeout: Seconds = Field(60.0, description="seconds before a peer request gives up")
    integrity_reread: bool = Field(
        False,
        description="the integrity check reads every delivered file back, instead of using "
        "the sha256 taken as its bytes arrived while the file is unchanged since",
    )


class AlaSettings(_Section):
    biocache_url: str = Field(
        "https://biocache.ala.org.au/", description="the ALA biocache root (ws/... below it)"
    )
    bie_url: str = Field(
        "https://bie.ala.org.au/ws/", description="the ALA species service (species/LSID.json)"
    )
    destination: str = Field("", description="ENDPOINT:PATH where pulled occurrences are written")
    page_size: int = Field(1_000_000, ge=1, description="most occurrence records per pull")
    timeout: Seconds = Field(120.0, description="seconds before an ALA request gives up")


class WebSettings(_Section):
    session_hours: float = Field(
        12.0,
        gt=0,
        le=MAX_SECONDS / 3600,
        description="how long a dashboard login lasts before asking again",
    )
    secure_cookie: bool = Field(
        True,
        description="mark the session cookie Secure (browsers send it over HTTPS and to "
        "loopback only); turn off only for plain HTTP on a trusted network",
    )
    poll_seconds: float = Field(
        2.0, ge=1.0, le=MAX_SECONDS, description="how often an open dashboard page asks for updates"
    )


class Settings(BaseSettings):
    """Every dataferry setting; see ``docs/configuration.md``."""

    model_config = SettingsConfigDict(
        env_prefix="DATAFERRY_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    home: Path = Field(default_factory=default_home)
    database_url: str = ""
    secret_key: str = Field("", description="Fernet key; default: <home>/secret.key")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    url: str = Field("", description="where the CLI finds the service; default http://host:port")
    tokens: list[str] = Field(default_factory=list, description="bearer tokens for /api/v1")
    token: str = Field("", description="the token the CLI sends")
    executor: Literal["inline", "celery"] = "inline"
    broker_url: str = Field(
        "", description="Celery broker, e.g. redis://host:6379/0 or amqp://user:pw@host:5672//"
    )
    node_name: str = Field("", description="this process's name in leases; default host:pid")
    jobs: JobSettings = Field(default_factory=JobSettings)
    transfer: TransferSettings = Field(default_factory=TransferSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    celery: CelerySettings = Field(default_factory=CelerySettings)
    records: RecordSettings = Field(default_factory=RecordSettings)
    ala: AlaSettings = Field(default_factory=AlaSettings)
    datasets: DatasetSettings = Field(default_factory=DatasetSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    sink: SinkSettings = Field(default_factory=SinkSettings)
    sinks: list[SinkSpec] = Field(
        default_factory=list, description="sinks defined in the config file ([[sinks]])"
    )

    @model_validator(mode="after")
    def _fill_derived(self) -> Settings:
        home = self.home.expanduser()
        object.__setattr__(self, "home", home)
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{home / 'dataferry.db'}")
        if not self.url:
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
            object.__setattr__(self, "url", f"http://{host}:{self.port}")
        if self.executor == "celery" and not self.broker_url:
            raise ValueError(
                'executor = "celery" needs broker_url (e.g. redis://127.0.0.1:6379/0 '
                "or amqp://guest:guest@127.0.0.1:5672//)"
            )
        return self

    @property
    def key_file(self) -> Path:
        return self.home / "secret.key"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get(CONFIG_ENV)
        if path:
            if not Path(path).is_file():
                raise FileNotFoundError(f"config file {path} (from {CONFIG_ENV}) does not exist")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment and config file, with explicit overrides on top."""
    return Settings(**overrides)
