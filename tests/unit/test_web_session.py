"""Dashboard session cookies and CSRF tokens (pure)."""

from __future__ import annotations

from dataferry.api.web.session import SessionCodec, fingerprint

KEY = b"k" * 32


def test_round_trip_and_expiry() -> None:
    codec = SessionCodec(KEY, 3600)
    session = codec.new(fingerprint("tok"), now=1000)
    cookie = codec.encode(session)
    assert codec.decode(cookie, now=1001) == session
    assert session.authenticated and session.expires == 4600
    assert codec.decode(cookie, now=4600) is None  # expired
    assert "tok" not in cookie


def test_forged_or_garbled_cookies_are_refused() -> None:
    codec = SessionCodec(KEY, 3600)
    cookie = codec.encode(codec.new("", now=1000))
    payload, mac = cookie.split(".")
    other = SessionCodec(b"x" * 32, 3600)
    assert other.decode(cookie, now=1001) is None  # another server's key
    forged = codec.encode(codec.new(fingerprint("admin"), now=1000)).split(".")[0]
    assert codec.decode(f"{forged}.{mac}", now=1001) is None  # payload swapped
    for bad in ("", ".", "abc", f"{payload}.", f".{mac}", f"{payload}.{mac}x", "a.b.c"):
        assert codec.decode(bad, now=1001) is None


def test_csrf_token_is_bound_to_the_session() -> None:
    codec = SessionCodec(KEY, 3600)
    a, b = codec.new(), codec.new()
    assert a.nonce != b.nonce
    assert codec.csrf_ok(a, codec.csrf(a))
    assert not codec.csrf_ok(b, codec.csrf(a))
    assert not codec.csrf_ok(a, "")
    assert not a.authenticated


def test_fingerprint_names_without_revealing() -> None:
    assert fingerprint("secret-token") == fingerprint("secret-token")
    assert fingerprint("secret-token") != fingerprint("secret-tokem")
    assert "secret" not in fingerprint("secret-token")
