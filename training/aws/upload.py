"""Upload prepared channels to S3: with progress, multipart for large files, and skipping
files already there with the same checksum (stored in the object's metadata)."""

from __future__ import annotations

from pathlib import Path

from training.checksums import file_sha256
from training.progress import progress

CHECKSUM_KEY = "sha256"
MULTIPART_THRESHOLD = 16 * 1024 * 1024


def _remote_checksum(s3, bucket: str, key: str) -> str | None:
    import botocore.exceptions

    try:
        return s3.head_object(Bucket=bucket, Key=key).get("Metadata", {}).get(CHECKSUM_KEY)
    except botocore.exceptions.ClientError as err:
        if err.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def upload_files(s3, bucket: str, files: dict[str, Path], show_progress: bool = True) -> dict:
    """Upload ``{key: path}``; returns ``{"uploaded": [...], "skipped": [...]}``."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_THRESHOLD
    )
    todo, skipped = {}, []
    for key, path in files.items():
        digest = file_sha256(path)
        if _remote_checksum(s3, bucket, key) == digest:
            skipped.append(key)
        else:
            todo[key] = (path, digest)
    total = sum(p.stat().st_size for p, _ in todo.values())
    bar = progress(total=total, desc="upload", unit="B", enabled=show_progress and total > 0)
    try:
        for key, (path, digest) in todo.items():
            s3.upload_file(
                str(path),
                bucket,
                key,
                Config=config,
                Callback=bar.update,
                ExtraArgs={"Metadata": {CHECKSUM_KEY: digest}},
            )
    finally:
        bar.close()
    return {"uploaded": sorted(todo), "skipped": skipped}
