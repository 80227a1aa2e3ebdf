"""What the peer file protocol of an instance accepts beyond its base: what we tell
(``GET /api/v1/peer/hello``) and what a peer told us.

The base protocol is what every release speaks (the routes of ``docs/datasets.md``
without the optional fields). A field added later is a *feature*: a peer that does
not list it is not sent it. Asking, rather than sending and reading the words of a
refusal, keeps working whatever a peer's validator says, and costs one request per
``dataferry://`` filesystem instead of one refused request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from dataferry.errors import NotFound, PermanentError
from dataferry.text import cut

#: the version of the base protocol; raised only by a change a peer of the version
#: before could not follow (an optional field is a feature instead)
PROTOCOL = 1
#: ``mtime`` in a batch header entry, a commit body and ``PUT /uploads`` with commit
MTIME = "mtime"
FEATURES: tuple[str, ...] = (MTIME,)
HELLO_PATH = "/api/v1/peer/hello"

log = logging.getLogger(__name__)


def hello() -> dict[str, Any]:
    """This instance's answer to ``GET /api/v1/peer/hello``."""
    return {"protocol": PROTOCOL, "features": list(FEATURES)}


def features_of(doc: Any, site: str) -> frozenset[str]:
    """The features a peer's hello lists; names we do not know are kept (and never
    asked for). A hello of another shape is refused: guessing could send a peer fields
    it refuses, or leave out ones it wants."""
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise PermanentError(
            f"site {site!r} answered the peer hello with {cut(repr(doc))}: "
            "not {'protocol': N, 'features': [names]}"
        )
    return frozenset(features)


class PeerFeatures:
    """The features of one peer, asked (``ask``: its hello's JSON) at the first
    question and kept. Thread-safe: a transfer's copy threads share it, and the first
    one asks while the others wait for its answer (one hello, not one per thread).

    A peer without the route (404) is the release before the hello, which takes no
    optional field. Any other failure is raised as it came (a timeout or a 5xx is
    transient and the transfer retries it) and is not kept: the next question asks
    again."""

    def __init__(self, site: str, ask: Callable[[], Any]) -> None:
        self.site = site
        self._ask = ask
        self._known: frozenset[str] | None = None
        self._lock = threading.Lock()

    def accepts(self, feature: str) -> bool:
        known = self._known
        if known is None:
            with self._lock:
                if self._known is None:
                    self._known = self._asked()
                known = self._known
        return feature in known

    def _asked(self) -> frozenset[str]:
        try:
            return features_of(self._ask(), self.site)
        except NotFound:
            log.warning(
                "site %s runs a version before the peer hello: it is sent no optional "
                "field (its copies get the time of the copy)",
                self.site,
            )
            return frozenset()
