"""Build file trees for transfer tests and compare them."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

NAMES = ["données", "日本語", "Ελληνικά", "emoji-🚀", "plain", "with space", "ünï"]


def make_tree(root: Path, files: int, seed: int = 7, max_size: int = 64 * 1024) -> dict[str, str]:
    """``files`` files in nested folders with unicode names and mixed sizes (some empty);
    returns {relative path: sha256}."""
    rng = random.Random(seed)
    out: dict[str, str] = {}
    for i in range(files):
        depth = rng.randint(0, 3)
        parts = [f"{rng.choice(NAMES)}-{rng.randint(0, 5)}" for _ in range(depth)]
        rel = "/".join([*parts, f"f{i}-{rng.choice(NAMES)}.bin"])
        size = rng.choice([0, 1, 100, 4096, rng.randint(0, max_size)])
        data = rng.randbytes(size)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out[rel] = hashlib.sha256(data).hexdigest()
    return out


def hash_tree(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for folder, _dirs, names in os.walk(root):
        for n in names:
            p = Path(folder) / n
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def temporaries(root: Path) -> list[str]:
    return [
        str(Path(folder) / n)
        for folder, _dirs, names in os.walk(root)
        for n in names
        if n.endswith(".dftmp")
    ]
