"""SHA-256 of files, streamed: what the manifest, the training record and the content-addressed
model upload identify artifacts by. Standard library only, so uploading imports no pandas."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
