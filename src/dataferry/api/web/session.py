"""Dashboard sessions and CSRF tokens (pure: no request objects, no I/O).

A session is a signed cookie ``<payload>.<mac>``; the payload holds a random
nonce, the expiry and, after a token login, a fingerprint of that token (so
removing a token from the configuration ends its sessions). The CSRF token of
a session is a MAC of its nonce: a page embeds it in every form, and a
state-changing request must send it back, which another site cannot do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

COOKIE = "dataferry_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


def fingerprint(token: str) -> str:
    """Names a token without revealing it."""
    return hashlib.sha256(b"dataferry-token:" + token.encode()).hexdigest()[:32]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    nonce: str
    expires: int  # unix seconds
    token: str  # fingerprint of the token that logged in; "" for an anonymous session

    @property
    def authenticated(self) -> bool:
        return bool(self.token)


class SessionCodec:
    def __init__(self, key: bytes, lifetime_seconds: float) -> None:
        self._key = key
        self.lifetime = lifetime_seconds

    def _mac(self, purpose: str, data: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}|{data}".encode(), hashlib.sha256).digest())

    def new(self, token_fingerprint: str = "", now: float | None = None) -> Session:
        now = time.time() if now is None else now
        return Session(secrets.token_urlsafe(18), int(now + self.lifetime), token_fingerprint)

    def encode(self, session: Session) -> str:
        payload = _b64(
            json.dumps({"n": session.nonce, "e": session.expires, "t": session.token}).encode()
        )
        return f"{payload}.{self._mac('session', payload)}"

    def decode(self, cookie: str, now: float | None = None) -> Session | None:
        """The session in ``cookie``, or None if it is forged, malformed or expired."""
        payload, _, mac = cookie.partition(".")
        if not payload or not hmac.compare_digest(
            mac.encode(), self._mac("session", payload).encode()
        ):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = Session(str(data["n"]), int(data["e"]), str(data["t"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires <= (time.time() if now is None else now):
            return None
        return session

    def csrf(self, session: Session) -> str:
        return self._mac("csrf", session.nonce)

    def csrf_ok(self, session: Session, presented: str) -> bool:
        return bool(presented) and hmac.compare_digest(
            presented.encode(), self.csrf(session).encode()
        )
