"""Endpoint options and secret names: which a protocol knows and what each option's
value must be, checked when an endpoint is registered. A name no protocol reads (a
typo such as ``know_hosts``) was stored and silently ignored; a bad value (``timeout
= -5``, ``read_only = maybe``) waited to fail, or not, at the first transfer.

Values come as text from the CLI (``-o k=v``) and as JSON scalars over REST, so
each check takes either. Endpoints stored before these checks still open: only
registration is checked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from dataferry.durations import MAX_SECONDS, MIN_SECONDS
from dataferry.errors import InvalidRequest

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")

#: a check of one option's value: returns nothing, raises ValueError saying what is wrong
Check = Callable[[Any], None]

_SITE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_WORD = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces


def flag(value: Any, default: bool = False) -> bool:
    """An option's yes/no value (``True``, ``"true"``, ``"yes"``, ``"1"``, ``"on"`` ...);
    ``default`` when it is absent or not one of those (checked at registration)."""
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    return default


def boolean(value: Any) -> None:
    if str(value).strip().lower() not in TRUE + FALSE:
        raise ValueError(f"must be true or false (or {'/'.join(TRUE)} / {'/'.join(FALSE)})")


def seconds(value: Any) -> None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError("must be a number of seconds") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise ValueError("must be a number of seconds")
    if not MIN_SECONDS <= number <= MAX_SECONDS:
        raise ValueError(f"must be from {MIN_SECONDS} to {MAX_SECONDS:.0f} seconds")


def word(value: Any) -> None:
    if isinstance(value, bool) or not _WORD.fullmatch(str(value)):
        raise ValueError("must be 1-255 printable characters without spaces")


def text(value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be text")
    if "\x00" in value:
        raise ValueError("must not hold a NUL character")


def sites(value: Any) -> None:
    names = [n.strip() for n in str(value).split(",") if n.strip()]
    bad = [n for n in names if n != "*" and not _SITE.fullmatch(n)]
    if isinstance(value, bool) or bad:
        raise ValueError(
            f"must be site names separated by commas, or '*' (not {', '.join(bad) or value!r})"
        )


def whole_number(low: int, high: int) -> Check:
    def check(value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError("must be a whole number")
        try:
            number = int(value)
        except ValueError:
            raise ValueError("must be a whole number") from None
        if not low <= number <= high:
            raise ValueError(f"must be from {low} to {high}")

    return check


#: options every endpoint has, whatever its protocol
COMMON: Mapping[str, Check] = {"read_only": boolean, "peer_read": sites, "peer_write": sites}


def check_options(scheme: str, options: Mapping[Any, Any], known: Mapping[str, Check]) -> None:
    """Refuse an option ``scheme``'s endpoints do not know (``known`` and
    :data:`COMMON`), and a value its check refuses."""
    every = {**COMMON, **known}
    for name, value in options.items():
        check = every.get(name) if isinstance(name, str) else None
        if check is None:
            raise InvalidRequest(
                f"option {name!r} is not an option of {scheme} endpoints "
                f"(known: {', '.join(sorted(every))})"
            )
        if value is None or not isinstance(value, (str, int, float, bool)):
            raise InvalidRequest(f"option {name}: must be text, a number or true/false")
        try:
            check(value)
        except ValueError as exc:
            raise InvalidRequest(f"option {name}: {exc}") from None


def check_secret_names(scheme: str, names: Any, known: frozenset[str]) -> None:
    """Refuse a secret ``scheme``'s endpoints never read (``pasword``: the connection
    would fail later as if the password were wrong)."""
    unknown = sorted(str(n) for n in names if n not in known)
    if unknown:
        listed = ", ".join(sorted(known)) or "none"
        raise InvalidRequest(
            f"secret {unknown[0]!r} is not a secret of {scheme} endpoints (known: {listed})"
        )
