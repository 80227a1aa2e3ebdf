"""Every setting the configuration tables name exists in ``dataferry.config.Settings``
with the documented default, and every setting the model has is documented. The
tables are read from the docs themselves: a renamed key or a changed default
otherwise leaves the reference telling operators something false, as the README's
tour once did with a command nobody ran."""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from dataferry.config import Settings
from dataferry.sinks.spec import SinkSpec

DOCS = Path(__file__).resolve().parents[2] / "docs"

#: Settings whose default is made from others at start-up: the table says how in
#: words, and ``test_derived_defaults_are_what_the_table_says`` checks them.
DERIVED = {"home", "database_url", "secret_key", "url", "node_name"}

#: Sizes the tables spell in units.
UNITS = {"KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}


def table_rows(
    doc: Path, heading: str | None = None, first: str = "key"
) -> Iterator[tuple[list[str], list[str]]]:
    """(keys, defaults) of each row of the ``| key | default | meaning |`` tables in
    ``doc`` (under ``heading`` only, if given). A row may name several keys
    (``jobs.backoff_base``, ``jobs.backoff_cap``) with one default each, or one
    default for them all."""
    text = doc.read_text()
    if heading is not None:
        start = text.index(f"\n{heading}\n")
        end = text.find("\n## ", start + 1)
        text = text[start : end if end != -1 else None]
    in_table = False
    for line in text.splitlines():
        if line.startswith(f"| {first} | default |"):
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
            continue
        if not in_table or line.startswith("| ---"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        keys = re.findall(r"`([a-z_.]+)`", cells[0])
        defaults = split_defaults(cells[1], len(keys))
        yield keys, defaults


def split_defaults(cell: str, count: int) -> list[str]:
    """One default per key: ``2.0, 300.0`` for two keys; one for all otherwise."""
    if cell.startswith("`") and cell.endswith("`") and cell.count("`") > 2:
        parts = re.findall(r"`([^`]*)`", cell)
    else:
        parts = [part.strip() for part in cell.split(", ")] if count > 1 else [cell]
    if len(parts) != count:
        parts = [cell] * count
    return [part.strip("`") for part in parts]


def documented_value(text: str) -> Any:
    """The value a table cell spells: TOML (``[]``, ``""``, ``false``, ``{transfers = 4}``,
    ``2.0``), a size in units (``1 TiB``), or else the text itself (``inline``)."""
    number, _, unit = text.partition(" ")
    if unit in UNITS:
        return int(number) * UNITS[unit]
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def model_default(key: str) -> Any:
    """The default of the dotted ``key`` in the Settings model, or KeyError."""
    model: type[BaseModel] = Settings
    *sections, name = key.split(".")
    for section in sections:
        annotation = model.model_fields[section].annotation
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel), key
        model = annotation
    return model.model_fields[name].get_default(call_default_factory=True)


def model_keys(model: type[BaseModel] = Settings, prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from model_keys(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def documented(doc: str, heading: str | None = None, section: str = "") -> list[tuple[str, str]]:
    """(key, default text) of each documented setting; ``section`` prefixes bare keys
    (replication.md's ``[records]`` table names ``max_drift_seconds``)."""
    rows = []
    for keys, defaults in table_rows(DOCS / doc, heading):
        for key, default in zip(keys, defaults, strict=True):
            if section and not key.startswith(f"{section}."):
                key = f"{section}.{key}"
            rows.append((key, default))
    return rows


TABLES = {
    "configuration.md": documented("configuration.md"),
    "ingest.md": documented("ingest.md", "## Configuration", "ingest"),
    "replication.md": documented("replication.md", "## Configuration (`[records]`)", "records"),
}
ROWS = [(doc, key, default) for doc, rows in TABLES.items() for key, default in rows]


def test_the_tables_are_read() -> None:
    # A table reshaped beyond what the reader understands must fail here, not pass empty.
    assert len(TABLES["configuration.md"]) > 60
    assert len(TABLES["ingest.md"]) > 10
    assert len(TABLES["replication.md"]) > 6


@pytest.mark.parametrize(("doc", "key", "default"), ROWS, ids=[f"{d}:{k}" for d, k, _ in ROWS])
def test_a_documented_setting_exists_with_its_default(doc: str, key: str, default: str) -> None:
    try:
        actual = model_default(key)
    except KeyError:
        pytest.fail(f"{doc}: `{key}` is not a setting")
    if key in DERIVED:
        assert actual in ("", None) or callable(actual) or isinstance(actual, Path), (doc, key)
        return
    expected = documented_value(default)
    if isinstance(actual, float | int) and not isinstance(actual, bool):
        assert isinstance(expected, int | float), f"{doc}: `{key}` default {default!r}"
        assert float(expected) == float(actual), f"{doc}: `{key}` is {actual}, not {default}"
    else:
        assert expected == actual, f"{doc}: `{key}` is {actual!r}, not {default}"


def test_the_sink_fields_table_is_the_sink_definition() -> None:
    """docs/sinks.md's field table (``[[sinks]]``, REST and CLI take the same fields)
    against ``SinkSpec``: every field, with its default (``required``, ``none``)."""
    rows = [
        (key, default)
        for keys, defaults in table_rows(DOCS / "sinks.md", "## Defining a sink", "field")
        for key, default in zip(keys, defaults, strict=True)
    ]
    assert {key for key, _ in rows} == set(SinkSpec.model_fields)
    for key, default in rows:
        field = SinkSpec.model_fields[key]
        if default == "required":
            assert field.is_required(), key
            continue
        actual = field.get_default(call_default_factory=True)
        expected = None if default == "none" else documented_value(default)
        assert expected == actual, f"docs/sinks.md: `{key}` is {actual!r}, not {default}"


def test_every_setting_is_in_the_configuration_reference() -> None:
    named = {key for key, _ in TABLES["configuration.md"]}
    missing = [key for key in model_keys() if key not in named]
    assert not missing, f"docs/configuration.md does not name {missing}"


def test_derived_defaults_are_what_the_table_says(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url="", url="", host="127.0.0.1", port=8080)
    assert settings.database_url == f"sqlite:///{tmp_path}/dataferry.db"
    assert settings.url == "http://127.0.0.1:8080"
    assert settings.key_file == tmp_path / "secret.key"


def test_the_example_file_and_the_environment_spellings_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """configuration.md's example ``dataferry.toml``, and its environment spellings
    (``[jobs] workers = 8`` is ``DATAFERRY_JOBS__WORKERS=8``; lists are JSON)."""
    text = (DOCS / "configuration.md").read_text()
    (example,) = re.findall(r"```toml\n(.*?)```", text, re.S)
    config = tmp_path / "dataferry.toml"
    config.write_text(example)
    for name in [n for n in os.environ if n.startswith("DATAFERRY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATAFERRY_CONFIG", str(config))
    monkeypatch.setenv("DATAFERRY_HOME", str(tmp_path))
    loaded = Settings()
    written = tomllib.loads(example)
    assert loaded.port == written["port"] and loaded.host == written["host"]
    assert loaded.tokens == written["tokens"]
    assert loaded.database_url == written["database_url"]
    assert loaded.jobs.workers == written["jobs"]["workers"]
    assert loaded.transfer.concurrency == written["transfer"]["concurrency"]

    (nested,) = re.findall(r"`\[jobs\] workers = 8` is `(DATAFERRY_JOBS__WORKERS)=8`", text)
    (lists,) = re.findall(r"`(DATAFERRY_TOKENS)='(\[[^']*\])'`", text)
    monkeypatch.setenv(nested, "8")
    monkeypatch.setenv(lists[0], lists[1])
    from_env = Settings()
    assert from_env.jobs.workers == 8
    assert from_env.tokens == json.loads(lists[1])


def test_the_ingest_environment_examples_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ingest.md: ``DATAFERRY_INGEST__MAX_UPLOAD_BYTES=...`` and
    ``DATAFERRY_INGEST__ALLOWED_PROJECTS='["p1","p2"]'``."""
    text = " ".join(section_text("ingest.md", "## Configuration").split())
    (lists,) = re.findall(r"`(DATAFERRY_INGEST__ALLOWED_PROJECTS)='(\[[^']*\])'`", text)
    assert "`DATAFERRY_INGEST__MAX_UPLOAD_BYTES=...`" in text
    monkeypatch.delenv("DATAFERRY_CONFIG", raising=False)
    monkeypatch.setenv(lists[0], lists[1])
    monkeypatch.setenv("DATAFERRY_INGEST__MAX_UPLOAD_BYTES", "1024")
    loaded = Settings(home=tmp_path)
    assert loaded.ingest.allowed_projects == json.loads(lists[1])
    assert loaded.ingest.max_upload_bytes == 1024


def section_text(doc: str, heading: str) -> str:
    text = (DOCS / doc).read_text()
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]
