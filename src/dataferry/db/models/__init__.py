"""Every table, one module per capability; importing this registers them all."""

from dataferry.db.models.endpoints import EndpointRow
from dataferry.db.models.jobs import JobAttemptRow, JobFileRow, JobRow
from dataferry.db.models.meta import MetaRow
from dataferry.db.models.sinks import SinkOutboxRow, SinkRow

__all__ = [
    "EndpointRow",
    "JobAttemptRow",
    "JobFileRow",
    "JobRow",
    "MetaRow",
    "SinkOutboxRow",
    "SinkRow",
]
