"""Peer requests: the calling site names itself and presents its token.

An unknown site, a missing or wrong token, or plain HTTP from a host that is not
loopback (unless ``datasets.allow_insecure_peers``) gets 403 and changes nothing;
so does a provider site on the routes that serve our datasets to consumers.
"""

from __future__ import annotations

import threading
import time

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from dataferry.api.auth import bearer, require_token
from dataferry.datasets.sites import SITE_HEADER, Site, SiteService, is_loopback
from dataferry.errors import Forbidden

# A peer transfer makes thousands of requests: a verified (site, token) pair is
# remembered this long (a removed site or changed token takes effect after it).
_CACHE_SECONDS = 2.0
_cache: dict[tuple[int, str, str], tuple[float, Site]] = {}
_lock = threading.Lock()


async def require_site(request: Request) -> Site:
    """FastAPI dependency (async: the cached path costs no thread hop)."""
    core = request.app.state.core
    client = request.client.host if request.client else ""
    if (
        request.url.scheme != "https"
        and not core.settings.datasets.allow_insecure_peers
        and not is_loopback(client)
    ):
        raise Forbidden(
            f"peer requests from {client or 'an unknown host'} must use HTTPS "
            "(or set datasets.allow_insecure_peers)"
        )
    name = request.headers.get(SITE_HEADER, "")
    token = bearer(request)
    if not name or not token:
        raise Forbidden(f"peer requests need {SITE_HEADER} and the site's bearer token")
    key = (id(core), name, token)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
        if hit is not None and now - hit[0] < _CACHE_SECONDS:
            return hit[1]
    site: Site = await run_in_threadpool(core.sites.authenticate, name, token)
    with _lock:
        if len(_cache) > 1000:
            _cache.clear()
        _cache[key] = (now, site)
    return site


async def require_consumer(request: Request) -> Site:
    """A peer asking for our datasets: an authenticated site registered as a consumer
    (``SiteService.check_consumer``)."""
    site = await require_site(request)
    return SiteService.check_consumer(site)


async def consumer_or_admin(request: Request) -> Site | None:
    """A consumer peer (naming itself) or an operator (the API token, if tokens are
    configured)."""
    if request.headers.get(SITE_HEADER):
        return await require_consumer(request)
    require_token(request)
    return None
