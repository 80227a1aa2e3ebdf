"""Wires records into the core: the records service, peers, the ``replicate``
job kind, the sync schedule and discovery."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataferry.records.service import RecordService

if TYPE_CHECKING:
    from dataferry.app import Core


def install(core: Core) -> None:
    core.records = RecordService(core.db, core.settings.records)
