"""The executor interface: something that runs queued jobs.

The database row is the source of truth; an executor only decides *where* a
job runs. ``dispatch`` is a hint that a job became runnable (new, due retry,
re-queued after a lease expired); losing the hint loses nothing, because the
scheduler tick repeats it for jobs still queued.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import Protocol


class Executor(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    def dispatch(self, job_id: int, queue: str) -> None: ...


def node_name(configured: str = "") -> str:
    """This process's name in leases and the ``worker`` column."""
    return configured or f"{socket.gethostname()}:{os.getpid()}"


def claim_owner(node: str) -> str:
    """A unique lease owner per claim, so a stale run can never renew a new one."""
    return f"{node}/{secrets.token_hex(4)}"
