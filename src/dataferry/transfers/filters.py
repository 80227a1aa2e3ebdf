"""Which files of a folder source a transfer takes: include and exclude patterns.

Patterns are gitignore's (``pathspec`` implements them exactly), matched against each
file's path relative to the transfer's source folder: ``*.tmp`` and ``cache/`` match
at any depth, ``/raw/*.csv`` and ``raw/**/x`` only from the source folder down, and
``!keep.tmp`` makes an exception to the patterns before it. A file is taken when
it matches ``include`` (or no include patterns are given) and does not match
``exclude``.
"""

from __future__ import annotations

from typing import Any

from pathspec import GitIgnoreSpec

from dataferry.errors import InvalidRequest
from dataferry.text import cut, has_control_character

MAX_PATTERNS = 100
MAX_PATTERN_LENGTH = 1000


def check_patterns(field: str, values: Any) -> tuple[str, ...]:
    """The patterns of ``field`` as given, or InvalidRequest naming the bad one.

    A pattern gitignore reads as nothing (blank, ``#comment``, ``/``) is refused
    rather than silently matching nothing."""
    if values is None:
        return ()
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise InvalidRequest(f"{field} must be a list of patterns")
    if len(values) > MAX_PATTERNS:
        raise InvalidRequest(f"{field} has {len(values)} patterns; at most {MAX_PATTERNS}")
    patterns: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise InvalidRequest(f"{field} pattern {cut(repr(value))} is not text")
        if len(value) > MAX_PATTERN_LENGTH:
            raise InvalidRequest(
                f"{field} pattern {cut(value)!r} is longer than {MAX_PATTERN_LENGTH} characters"
            )
        if has_control_character(value):
            raise InvalidRequest(f"{field} pattern {cut(value)!r} has a control character")
        try:
            spec = GitIgnoreSpec.from_lines([value])
        except ValueError as exc:  # pathspec's GitIgnorePatternError
            raise InvalidRequest(f"{field} pattern {cut(value)!r} is not valid: {exc}") from None
        if not spec.patterns or all(p.include is None for p in spec.patterns):
            raise InvalidRequest(
                f"{field} pattern {cut(value)!r} matches nothing (blank, a #comment or '/')"
            )
        patterns.append(value)
    return tuple(patterns)


class PathFilter:
    def __init__(self, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> None:
        # Compiled once; matching runs once per planned file.
        self._include = GitIgnoreSpec.from_lines(include) if include else None
        self._exclude = GitIgnoreSpec.from_lines(exclude) if exclude else None
        # A "!" exception can take a file back from an excluded folder: then no folder
        # may be passed over unlisted.
        self._exceptions = any(p.include is False for p in getattr(self._exclude, "patterns", ()))

    def __bool__(self) -> bool:
        return bool(self._include or self._exclude)

    def skips_folder(self, path: str) -> bool:
        """Whether no file below the folder ``path`` can be taken, so a listing need not
        go into it (``.git/``, ``cache/``): it matches ``exclude`` and no exception
        could take a file back."""
        return bool(self._exclude and not self._exceptions and self._exclude.match_file(path + "/"))

    def passes_over(self, path: str, is_folder: bool) -> bool:
        """For a listing (``EndpointFS.files_below``): a folder nothing of which is
        taken, or a file that is not."""
        return self.skips_folder(path) if is_folder else not self.takes(path)

    def takes_folder(self, path: str) -> bool:
        """Whether the empty folder ``path`` is kept (``empty_folders``): ``exclude``
        does not leave it out and, with ``include`` patterns, one names it as a folder
        (``--include 'raw/'``): ``*.csv`` takes files, not the folders around them."""
        folder = path + "/"
        if self._include and not self._include.match_file(folder):
            return False
        return not (self._exclude and self._exclude.match_file(folder))

    def takes(self, path: str) -> bool:
        """Whether the file at ``path`` (relative to the source folder) is transferred."""
        if self._include and not self._include.match_file(path):
            return False
        return not (self._exclude and self._exclude.match_file(path))
