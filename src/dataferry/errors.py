"""One exception hierarchy for the whole service.

Front doors map these to their own error shapes (HTTP status, XML-RPC fault,
JSON-RPC error, CLI exit code); driver errors are converted at the boundary
with ``raise ... from exc``.
"""

from __future__ import annotations

import errno
from typing import TypeGuard

# OS errors that refuse the request itself (a name too long, a file where a folder
# must be, a link loop, a read-only file system): asking again gets the same answer,
# so they are permanent, and a front door answers them as invalid, not as a fault.
REFUSED_BY_THE_FILE_SYSTEM = frozenset(
    {
        errno.ENAMETOOLONG,
        errno.EINVAL,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ELOOP,
        errno.EROFS,
        errno.EEXIST,
        errno.ENOTEMPTY,
    }
)


class DataferryError(Exception):
    """Root of every error dataferry raises on purpose."""

    status_code = 500
    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(DataferryError):
    """The caller asked for something malformed or not allowed."""

    status_code = 422
    code = "invalid"


class NotFound(DataferryError):
    status_code = 404
    code = "not_found"


class Conflict(DataferryError):
    """The request is valid but contradicts the current state (e.g. a duplicate name)."""

    status_code = 409
    code = "conflict"


class Unauthorized(DataferryError):
    status_code = 401
    code = "unauthorized"


class Forbidden(DataferryError):
    status_code = 403
    code = "forbidden"


class TransientError(DataferryError):
    """Worth retrying later: timeouts, resets, a busy remote."""

    status_code = 503
    code = "transient"


class PermanentError(DataferryError):
    """Retrying will not help: bad credentials, a vanished source, a checksum mismatch."""

    status_code = 500
    code = "permanent"


class ConfigurationError(DataferryError):
    """A setting the service cannot start with: a database it cannot use or reach, a
    secret key that is not one, a home folder it cannot create."""

    code = "configuration"


class JobLost(DataferryError):
    """This worker no longer owns the job (cancelled, or its lease was taken over)."""

    code = "job_lost"


class JobInterrupted(JobLost):
    """This process is stopping: the run ends here and the job goes back to the queue
    (a handler stops on it exactly as on JobLost)."""

    code = "job_interrupted"


def refused_by_the_file_system(exc: BaseException) -> TypeGuard[OSError]:
    """An OS error that no retry can mend (see ``REFUSED_BY_THE_FILE_SYSTEM``)."""
    return isinstance(exc, OSError) and exc.errno in REFUSED_BY_THE_FILE_SYSTEM
