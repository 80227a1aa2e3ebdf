"""Every ``dataferry ...`` command the README and docs/ show names a command and
options the CLI has. A renamed option or subcommand otherwise leaves the reference
telling readers to type something that fails (the README tour once did)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from dataferry.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documented_commands() -> Iterator[tuple[str, str]]:
    """(where, command line) for each command shown in a code block or code span."""
    for doc in DOCUMENTS:
        in_fence = False
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            where = f"{doc.relative_to(ROOT)}:{number}"
            if line.lstrip().startswith("```"):
                in_fence = not in_fence
                continue
            stripped = line.strip().removeprefix("$ ")
            if (in_fence or line.startswith("    ")) and stripped.startswith("dataferry "):
                yield where, stripped
            elif not in_fence:
                for span in re.findall(r"`(dataferry [^`]+)`", line):
                    yield where, span


def words(command: str) -> list[str]:
    """The command's words up to a pipe, a redirect or a second command."""
    try:
        tokens = shlex.split(command.rstrip("\\"), comments=True)
    except ValueError:  # a span that shows only part of a quoted value
        tokens = command.split()
    taken = []
    for token in tokens[1:]:
        if token in {"|", ">", "&&", ";", "&"} or token.startswith((">", "2>")):
            break
        taken.append(token)
    return taken


def option_names(command: Any) -> set[str]:
    return {name for param in command.params for name in (*param.opts, *param.secondary_opts)}


ROOT_COMMAND = typer.main.get_command(app)
COMMANDS = list(documented_commands())


def test_the_documents_show_commands() -> None:
    assert len(COMMANDS) > 50


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_a_documented_command_exists_with_its_options(where: str, command: str) -> None:
    # Typer builds its commands on a click of its own: a group is what has subcommands.
    current: Any = ROOT_COMMAND
    known = option_names(current)  # the root's options (--url, --token) go anywhere before
    rest = words(command)
    while hasattr(current, "commands") and rest:
        if rest[0] in {"--url", "--token", "-c", "--config"}:
            rest = rest[2:]
            continue
        name = rest.pop(0)
        if name in {"...", "…"} or name.startswith("["):
            return  # a synopsis ("dataferry [--config FILE] ... COMMAND"): no command named
        if "|" in name:  # "site add|list|remove": each one must exist
            missing = [n for n in name.split("|") if n not in current.commands]
            assert not missing, f"{where}: `{command}`: no command {missing}"
            return
        sub = current.commands.get(name)
        assert sub is not None, f"{where}: `{command}`: no command {name!r}"
        current = sub
        known |= option_names(current)
    for token in rest:
        if token.startswith("-") and token not in {"-", "--"} and not token[1:2].isdigit():
            option = token.split("=", 1)[0]
            assert option in known, f"{where}: `{command}`: {current.name} has no {option}"
