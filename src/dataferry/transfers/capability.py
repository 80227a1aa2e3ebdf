"""Wires transfers into the core: the ``transfer`` job kind, its service and the
schedules that submit transfers again every so often (run by the scheduler tick)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataferry.jobs.registry import JobKind
from dataferry.transfers import run
from dataferry.transfers.schedules import ScheduleService
from dataferry.transfers.service import KIND, TransferService
from dataferry.transfers.store import TransferStore

if TYPE_CHECKING:
    from dataferry.app import Core


def install(core: Core) -> None:
    store = TransferStore(core.db)
    core.registry.register(
        JobKind(
            KIND,
            run.handler(core.endpoints, store, core.settings.transfer),
            queue="transfers",
            prunable=True,
        )
    )
    core.transfers = TransferService(core.jobs, core.endpoints)
    core.schedules = ScheduleService(core.db, core.jobs, core.transfers)
    schedules = core.schedules

    def submit_due_runs() -> None:
        schedules.run_due()

    core.scheduler.add_periodic(
        "transfer schedules", submit_due_runs, core.settings.jobs.tick_seconds
    )
