"""Every command says what it does in the command lists of ``--help``: a one-line
summary (the first paragraph of its help; a line break there shows as a broken line
in the list, as ``worker`` and ``beat`` once did), and the rest in later paragraphs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer.main

from dataferry.cli.main import app


def commands(command: Any, path: str = "dataferry") -> Iterator[tuple[str, Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from commands(sub, f"{path} {name}")


ALL = list(commands(typer.main.get_command(app)))


@pytest.mark.parametrize(("path", "command"), ALL, ids=[path for path, _ in ALL])
def test_command_has_a_one_line_summary(path: str, command: Any) -> None:
    help_text = (command.help or "").strip()
    assert help_text, f"{path} has no help text"
    summary = help_text.split("\n\n")[0]
    assert "\n" not in summary, f"{path}: the summary breaks across lines: {summary!r}"


def test_every_command_is_listed() -> None:
    assert len(ALL) > 40  # the tree was walked, not only its root
