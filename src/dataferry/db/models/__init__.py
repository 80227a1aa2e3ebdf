"""Every table, one module per capability; importing this registers them all."""

from dataferry.db.models.datasets import (
    DatasetRow,
    DeliveryRow,
    SiteRow,
    SyncedDatasetEventRow,
    SyncedDatasetRow,
)
from dataferry.db.models.endpoints import EndpointRow
from dataferry.db.models.ingest import IngestFileRow, IngestKeyValueRow, IngestTransactionRow
from dataferry.db.models.jobs import JobAttemptRow, JobFileRow, JobRow
from dataferry.db.models.meta import MetaRow
from dataferry.db.models.records import (
    AckRow,
    CheckpointRow,
    ClockRow,
    CollectionRow,
    ConflictRow,
    PeerRow,
    RecordRow,
)
from dataferry.db.models.schedules import ScheduleRow
from dataferry.db.models.sinks import SinkOutboxRow, SinkRow

__all__ = [
    "AckRow",
    "CheckpointRow",
    "ClockRow",
    "CollectionRow",
    "ConflictRow",
    "DatasetRow",
    "DeliveryRow",
    "EndpointRow",
    "IngestFileRow",
    "IngestKeyValueRow",
    "IngestTransactionRow",
    "JobAttemptRow",
    "JobFileRow",
    "JobRow",
    "MetaRow",
    "PeerRow",
    "RecordRow",
    "ScheduleRow",
    "SinkOutboxRow",
    "SinkRow",
    "SiteRow",
    "SyncedDatasetEventRow",
    "SyncedDatasetRow",
]
