"""Settings: defaults, TOML file, environment on top."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from dataferry.config import CONFIG_ENV, load_settings


def test_defaults_need_no_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv("DATAFERRY_HOME", str(tmp_path))
    s = load_settings()
    assert s.home == tmp_path
    assert s.database_url == f"sqlite:///{tmp_path / 'dataferry.db'}"
    assert (s.host, s.port, s.executor) == ("127.0.0.1", 8080, "inline")
    assert s.url == "http://127.0.0.1:8080"


def test_toml_then_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "df.toml"
    cfg.write_text('port = 9000\ntokens = ["t1"]\n[jobs]\nworkers = 3\nmax_attempts = 9\n')
    monkeypatch.setenv(CONFIG_ENV, str(cfg))
    monkeypatch.setenv("DATAFERRY_HOME", str(tmp_path))
    monkeypatch.setenv("DATAFERRY_JOBS__WORKERS", "7")
    s = load_settings()
    assert s.port == 9000
    assert s.tokens == ["t1"]
    assert s.jobs.workers == 7  # environment wins over the file
    assert s.jobs.max_attempts == 9


def test_unknown_keys_and_bad_values_are_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = tmp_path / "df.toml"
    cfg.write_text("prot = 9000\n")
    monkeypatch.setenv(CONFIG_ENV, str(cfg))
    with pytest.raises(ValueError, match="prot"):
        load_settings()
    cfg.write_text("port = 99999\n")
    with pytest.raises(ValueError, match="port"):
        load_settings()


def test_missing_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "nope.toml"))
    with pytest.raises(FileNotFoundError, match=r"nope\.toml"):
        load_settings()


def test_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    s = load_settings()
    with pytest.raises(ValueError):
        s.port = 1  # type: ignore[misc]


def test_sink_durations_below_a_hundredth_of_a_second_are_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A tick or retry wait of 1e-300 s made the sink loop spin without sleeping."""
    cfg = tmp_path / "df.toml"
    cfg.write_text("[sink]\ntick_seconds = 0.01\n")
    monkeypatch.setenv(CONFIG_ENV, str(cfg))
    assert load_settings().sink.tick_seconds == 0.01
    monkeypatch.setenv("DATAFERRY_SINK__TICK_SECONDS", "1e-300")
    with pytest.raises(ValueError, match=r"tick_seconds\n.*greater than or equal to 0\.01"):
        load_settings()
    monkeypatch.delenv("DATAFERRY_SINK__TICK_SECONDS")
    cfg.write_text(
        '[[sinks]]\nname = "s"\nretry_interval = 1e-300\n[sinks.source]\ncollection = "c"\n'
    )
    with pytest.raises(ValueError, match=r"retry_interval\n.*greater than or equal to 0\.01"):
        load_settings()


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("DATAFERRY_JOBS__TICK_SECONDS", "1e-300", "greater than or equal to 0.01"),
        ("DATAFERRY_JOBS__BACKOFF_CAP", "inf", "finite number"),
        ("DATAFERRY_JOBS__BACKOFF_BASE", "nan", "finite number"),
        ("DATAFERRY_JOBS__LEASE_SECONDS", "1e300", "less than or equal to 31536000"),
        ("DATAFERRY_DATASETS__POLL_SECONDS", "0.001", "greater than or equal to 0.01"),
        ("DATAFERRY_RECORDS__SYNC_INTERVAL", "infinity", "finite number"),
        ("DATAFERRY_WEB__SESSION_HOURS", "1e300", "less than or equal to 8760"),
        ("DATAFERRY_INGEST__MAX_COMPRESSION_RATIO", "nan", "finite number"),
    ],
)
def test_durations_are_bounded_and_no_setting_takes_nan_or_infinity(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str
) -> None:
    """An infinite backoff cap or session length overflowed the date arithmetic when it
    was first used (a retry, a login); 1e-300 s made a tick loop spin. Each is an error
    naming the setting when the settings are read."""
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv(env, value)
    field = env.rsplit("__", 1)[1].lower()
    with pytest.raises(ValueError, match=rf"{field}\n.*{re.escape(message)}"):
        load_settings()


@pytest.mark.parametrize("value", ["-1", "nan", "40000", "a week"])
def test_keep_finished_days_is_checked(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAFERRY_JOBS__KEEP_FINISHED_DAYS", value)
    with pytest.raises(ValidationError, match="keep_finished_days"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("OWNER", "Ann\x1b[2J", "records.owner must be printable text"),
        ("CONTACT", "a@b\u2028c", "records.contact must be printable text"),
        ("OWNER", "x" * 257, "owner\n.*at most 256 characters"),
    ],
)
def test_owner_and_contact_are_what_peers_accept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, message: str
) -> None:
    """Peers refuse a hello whose owner or contact is not printable or over 256
    characters (records.replication.check_hello): before, any text was sent."""
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv("DATAFERRY_HOME", str(tmp_path))
    monkeypatch.setenv(f"DATAFERRY_RECORDS__{variable}", value)
    with pytest.raises(ValueError, match=message):
        load_settings()
    monkeypatch.setenv(f"DATAFERRY_RECORDS__{variable}", "Ann Lee <ann@example.org> \u00e9")
    assert load_settings().records.owner is not None
