"""Wires transfers into the core: the ``transfer`` job kind and its service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataferry.jobs.registry import JobKind
from dataferry.transfers import run
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
