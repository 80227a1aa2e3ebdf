"""Task names of an ingest job (part of the Pacifica contract) and the bundle error."""

from __future__ import annotations

from dataferry.errors import PermanentError

KIND = "ingest"

UPLOADING = "UPLOADING"
OPEN_TAR = "open tar"
LOAD_METADATA = "load metadata"
POLICY = "Policy Validation"
INGEST_FILES = "ingest files"
MOVE_FILES = "move files"
INGEST_METADATA = "ingest metadata"

UPLOAD_TASKS = (UPLOADING, OPEN_TAR, LOAD_METADATA, POLICY, INGEST_FILES, INGEST_METADATA)
MOVE_TASKS = (UPLOADING, LOAD_METADATA, POLICY, MOVE_FILES, INGEST_METADATA)


class BundleError(PermanentError):
    """A bundle was refused at ``task``; retrying will not help."""

    code = "bundle_refused"

    def __init__(self, task: str, message: str) -> None:
        super().__init__(message)
        self.task = task
