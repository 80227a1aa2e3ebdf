"""Wires the data mover's calls into the core: job kinds and RPC methods."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dataferry.jobs.registry import JobKind
from dataferry.mover import ala, run
from dataferry.mover.service import ALA_KIND, MOVE_KIND, MoverService

if TYPE_CHECKING:
    from dataferry.app import Core


def install(core: Core) -> None:
    settings = core.settings
    core.registry.register(
        JobKind(
            MOVE_KIND,
            run.handler(core.endpoints, settings.transfer),
            queue="transfers",
            prunable=True,
        )
    )
    core.registry.register(
        JobKind(
            ALA_KIND, ala.handler(core.endpoints, settings.ala, settings.transfer), prunable=True
        )
    )
    mover = MoverService(core.jobs, core.endpoints, settings.ala)
    core.mover = mover

    def move(source: Any = None, destination: Any = None, zip: Any = False) -> dict[str, Any]:
        """move(source, destination, zip=False): copy a URL, ENDPOINT:PATH, or a list of
        them to destination (URL or ENDPOINT:PATH); zip=True delivers one zip archive.
        Returns {"id", "status": "PENDING"} at once, or {"status": "REJECTED", "reason"}."""
        return mover.move(source, destination, zip)

    def check_move_status(id: Any = None) -> dict[str, Any]:
        """check_move_status(id): {"id", "status": PENDING|IN_PROGRESS|COMPLETED|FAILED
        [, "reason"]}; an unknown id gives REJECTED / Job does not exist."""
        return mover.move_status(id)

    def pull_ala(lsid: Any = None) -> dict[str, Any]:
        """pullOccurrenceFromALA(lsid): download a species' occurrences (CSV) and metadata
        from the Atlas of Living Australia to the configured destination. Returns
        {"id", "status": "PENDING"} or REJECTED with a reason."""
        return mover.pull_ala(lsid)

    def ala_status(id: Any = None) -> dict[str, Any]:
        """checkALAJobStatus(id): PENDING, DOWNLOADING, COMPLETED or FAILED (with reason)."""
        return mover.ala_status(id)

    core.rpc.register("move", move)
    core.rpc.register("check_move_status", check_move_status)
    core.rpc.register("checkMoveStatus", check_move_status)
    core.rpc.register("pullOccurrenceFromALA", pull_ala)
    core.rpc.register("checkALAJobStatus", ala_status)
