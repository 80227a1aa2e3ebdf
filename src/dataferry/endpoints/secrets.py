"""Secrets at rest: a Fernet key from ``DATAFERRY_SECRET_KEY`` or a 0600 key file."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from dataferry.errors import ConfigurationError, PermanentError


def ensure_key_file(path: Path) -> None:
    """Create the key file with mode 0600 if it does not exist (``init-db`` does this)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, Fernet.generate_key())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic, and never overwrites a key another process made
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


class SecretBox:
    """Encrypts a dict of secrets to one opaque string and back."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key

    def derive(self, purpose: str) -> bytes:
        """A key for another use (e.g. signing dashboard sessions), derived from this one:
        every server sharing the secret key derives the same."""
        return hmac.new(self._key, purpose.encode(), hashlib.sha256).digest()

    @classmethod
    def from_settings(cls, secret_key: str, key_file: Path) -> SecretBox:
        if secret_key:
            try:
                return cls(secret_key.encode())
            except ValueError:
                raise ConfigurationError(
                    "secret_key must be a Fernet key (32 url-safe base64-encoded bytes), "
                    "e.g. from: python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'"
                ) from None
        ensure_key_file(key_file)
        return cls(key_file.read_bytes().strip())

    def seal(self, secrets: dict[str, str]) -> str:
        if not secrets:
            return ""
        return self._fernet.encrypt(json.dumps(secrets).encode()).decode()

    def open(self, sealed: str) -> dict[str, str]:
        if not sealed:
            return {}
        try:
            data: dict[str, str] = json.loads(self._fernet.decrypt(sealed.encode()))
        except InvalidToken as exc:
            raise PermanentError(
                "stored secrets cannot be decrypted: the secret key changed since they were saved"
            ) from exc
        return data
