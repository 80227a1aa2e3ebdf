"""The shipped example (examples/ala-vettings) produces the partner's exact format."""

from __future__ import annotations

import json
import sqlite3
import tomllib
from pathlib import Path
from typing import Any

from dataferry.config import Settings
from tests.support.receiver import Receiver

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ala-vettings"


def test_example_config_and_schema_produce_the_partner_format(
    core: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    db = tmp_path / "portal.db"
    with sqlite3.connect(db) as conn:
        conn.executescript((EXAMPLE / "schema.sql").read_text())
    # The config file parses as dataferry settings, as shipped.
    monkeypatch.setenv("DATAFERRY_CONFIG", str(EXAMPLE / "dataferry.toml"))
    [shipped] = Settings(home=tmp_path / "h").sinks
    assert shipped.mapping == json.loads((EXAMPLE / "mapping.json").read_text())
    receiver = Receiver().start()
    try:
        definition: dict[str, Any] = tomllib.loads((EXAMPLE / "dataferry.toml").read_text())[
            "sinks"
        ][0]
        definition["url"] = receiver.url
        definition["source"]["table"]["url"] = f"sqlite:///{db}"
        core.sinks.add(definition)
        core.sinks.run_once("ala-vettings")
        docs = {r.document["species"]: r.document for r in receiver.applied()}
        assert set(docs) == {"Acacia dealbata", "Eucalyptus regnans"}  # no email: not sent
        assert docs["Eucalyptus regnans"] == {
            "id": "2",
            "status": "new",
            "lastModified": "2026-11-26 04:01:00.000000",
            "apiKey": "change-me",
            "ignored": False,
            "species": "Eucalyptus regnans",
            "classification": "invalid",
            "comment": "outside the known range",
            "user": {"email": "curator@example.org", "authority": "ALA", "isAdmin": True},
            "area": "POLYGON((145.0 -37.9, 145.5 -37.9, 145.5 -37.5, 145.0 -37.5, 145.0 -37.9))",
        }
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE vettings SET deleted = '2026-11-26 05:00:00' WHERE id = 1")
        core.sinks.run_once("ala-vettings")
        assert receiver.applied()[-1].document == {
            "id": "1",
            "status": "deleted",
            "lastModified": "2026-11-26 05:00:00",
            "apiKey": "change-me",
        }
        with sqlite3.connect(db) as conn:
            assert [r[0] for r in conn.execute("SELECT id FROM vettings ORDER BY id")] == [2, 3]
    finally:
        receiver.stop()
