"""Secrets sealed with Fernet; the key file is created once, mode 0600."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from dataferry.endpoints.secrets import SecretBox, ensure_key_file
from dataferry.errors import PermanentError


def test_key_file_created_0600_and_kept(tmp_path: Path) -> None:
    key = tmp_path / "sub" / "secret.key"
    ensure_key_file(key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    first = key.read_bytes()
    ensure_key_file(key)
    assert key.read_bytes() == first
    assert [p.name for p in key.parent.iterdir()] == ["secret.key"]


def test_round_trip_and_opaque(tmp_path: Path) -> None:
    box = SecretBox.from_settings("", tmp_path / "k")
    sealed = box.seal({"password": "hunter2"})
    assert "hunter2" not in sealed
    assert box.open(sealed) == {"password": "hunter2"}
    assert box.seal({}) == "" and box.open("") == {}


def test_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    sealed = SecretBox(Fernet.generate_key()).seal({"a": "b"})
    with pytest.raises(PermanentError, match="secret key changed"):
        SecretBox(Fernet.generate_key()).open(sealed)
