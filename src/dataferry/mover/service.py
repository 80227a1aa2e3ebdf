"""The data mover's calls, for every front door: ``move`` and its status, ALA
occurrence pulls and theirs. Invalid requests are answered with ``REJECTED`` and a
reason, and create no job."""

from __future__ import annotations

import re
from typing import Any

from dataferry.config import AlaSettings
from dataferry.endpoints.paths import split_location
from dataferry.endpoints.service import EndpointService
from dataferry.errors import InvalidRequest, NotFound
from dataferry.jobs.model import parse_job_id
from dataferry.jobs.service import JobService
from dataferry.mover import locations
from dataferry.mover.status import DOWNLOADING, PENDING, mover_status, rejected

MOVE_KIND = "mover.move"
ALA_KIND = "ala.occurrences"
LSID_RE = re.compile(r"[\w.:/\-]+")
LSID_MAX = 300


class MoverService:
    def __init__(self, jobs: JobService, endpoints: EndpointService, ala: AlaSettings) -> None:
        self.jobs = jobs
        self.endpoints = endpoints
        self.ala = ala

    def move(self, source: Any = None, destination: Any = None, zip: Any = False) -> dict[str, Any]:
        """Queue copying ``source`` (a URL, ``ENDPOINT:PATH`` or a list of them) to
        ``destination``; ``{"id", "status": "PENDING"}`` or ``REJECTED`` with a reason."""
        try:
            sources = source if isinstance(source, list) else [source]
            if not sources or source is None:
                raise InvalidRequest("missing source")
            parsed = [locations.parse(s, "source") for s in sources]
            dest = locations.parse(destination, "destination")
            for loc in parsed:
                locations.check_known(loc, self.endpoints, "source")
            locations.check_known(dest, self.endpoints, "destination")
            if not isinstance(zip, (bool, int)):
                raise InvalidRequest("zip must be true or false")
        except InvalidRequest as exc:
            return rejected(exc.message)
        params = {
            "sources": [loc.text for loc in parsed],
            "destination": dest.text,
            "zip": bool(zip),
        }
        job = self.jobs.submit(MOVE_KIND, params)
        return {"id": job.id, "status": PENDING}

    def move_status(self, job_id: Any) -> dict[str, Any]:
        return self._status(job_id, MOVE_KIND, "IN_PROGRESS")

    def pull_ala(self, lsid: Any = None) -> dict[str, Any]:
        """Queue downloading a species' occurrences and metadata from the ALA."""
        if not isinstance(lsid, str) or not lsid.strip():
            return rejected("missing lsid")
        lsid = lsid.strip()
        if len(lsid) > LSID_MAX:
            return rejected(f"lsid {lsid[:40]!r}... is longer than {LSID_MAX} characters")
        if not LSID_RE.fullmatch(lsid):
            return rejected(f"lsid {lsid[:60]!r} has characters an LSID cannot have")
        if not self.ala.destination:
            return rejected("no ALA destination is configured (ala.destination)")
        try:
            endpoint, _ = split_location(self.ala.destination)
            self.endpoints.get(endpoint)
        except (InvalidRequest, NotFound) as exc:
            return rejected(f"ALA destination: {exc.message}")
        job = self.jobs.submit(ALA_KIND, {"lsid": lsid})
        return {"id": job.id, "status": PENDING}

    def ala_status(self, job_id: Any) -> dict[str, Any]:
        return self._status(job_id, ALA_KIND, DOWNLOADING)

    def _status(self, job_id: Any, kind: str, active: str) -> dict[str, Any]:
        number = parse_job_id(job_id)
        if number is None:
            return rejected("Job does not exist")
        try:
            job = self.jobs.get(number)
        except (NotFound, InvalidRequest):  # InvalidRequest: past what the database can store
            return rejected("Job does not exist")
        if job.kind != kind:
            return rejected("Job does not exist")
        return mover_status(job, active)
