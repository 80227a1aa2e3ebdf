"""Transfer schedules: a transfer submitted again every so often (Globus Timers)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dataferry.db.base import Base, UTCDateTime, utcnow


class ScheduleRow(Base):
    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    # the transfer as asked (TransferRequest.params()), checked again at each run
    transfer: Mapped[dict[str, Any]] = mapped_column(JSON)
    every: Mapped[float] = mapped_column(Float)  # seconds between runs
    start: Mapped[datetime] = mapped_column(UTCDateTime)  # runs fall on start + k * every
    next_run: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    runs: Mapped[int] = mapped_column(Integer, default=0)  # jobs submitted
    skipped: Mapped[int] = mapped_column(Integer, default=0)  # runs not made (see last_error)
    last_run: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # no foreign key: old jobs are pruned, the schedule keeps the id it last made
    last_job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
