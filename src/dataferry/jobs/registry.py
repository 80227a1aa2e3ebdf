"""Job kinds: each capability registers the kinds it runs and their handler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dataferry.errors import InvalidRequest

if TYPE_CHECKING:
    from dataferry.jobs.context import JobContext

Handler = Callable[["JobContext"], "dict[str, Any] | None"]


@dataclass(frozen=True, slots=True)
class JobKind:
    name: str
    handler: Handler
    queue: str = "default"
    max_attempts: int | None = None  # None: the configured default
    #: finished jobs of this kind may be deleted when old (``jobs.keep_finished_days``);
    #: False for kinds whose job other records name (an ingest transaction, a dataset)
    prunable: bool = False


class JobRegistry:
    """Kind name -> :class:`JobKind`. The job engine knows no capability but this."""

    def __init__(self) -> None:
        self._kinds: dict[str, JobKind] = {}

    def register(self, kind: JobKind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"job kind {kind.name!r} is registered twice")
        self._kinds[kind.name] = kind

    def get(self, name: str) -> JobKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise InvalidRequest(f"unknown job kind {name!r}") from None

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def prunable(self) -> list[str]:
        return sorted(k.name for k in self._kinds.values() if k.prunable)

    def queues(self) -> list[str]:
        return sorted({k.queue for k in self._kinds.values()})
