"""What ``run.json`` records about a run besides its parameters: the data's fingerprint and the package versions."""

from __future__ import annotations

import hashlib
import importlib.metadata
import sys
from pathlib import Path
from typing import Any

_PACKAGES = (
    "journeylab",
    "pandas",
    "numpy",
    "scipy",
    "statsmodels",
    "duckdb",
    "matplotlib",
    "seaborn",
    "papermill",
    "nbconvert",
    "ipykernel",
)


def _fingerprint(data: str | None) -> dict[str, Any]:
    if not data:
        return {"source": "bundled sample (generated, seeded)"}
    path = Path(data)
    if path.is_file():
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return {"source": path.name, "sha256": digest.hexdigest(), "bytes": path.stat().st_size}
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        digest = hashlib.sha256()
        for p in files:
            digest.update(p.name.encode())
            digest.update(hashlib.sha256(p.read_bytes()).digest())
        return {"source": path.name, "sha256": digest.hexdigest(), "files": len(files)}
    return {"source": "table or query", "sha256": hashlib.sha256(str(data).encode()).hexdigest()}


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for pkg in _PACKAGES:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out
