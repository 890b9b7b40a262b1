"""Fetch a model artifact from S3 for ``inspect``, ``serve`` and ``predict``: through a client in
the bucket's own region, with progress, and with the error a user can act on."""

from __future__ import annotations

import io

from training.aws import naming
from training.aws import session as aws
from training.core.artifact import too_large
from training.errors import Problem, ValidationError
from training.limits import MAX_ARCHIVE_BYTES
from training.progress import progress


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); a clear error for anything else."""
    parts = naming.split_s3_url(url)
    if parts is None:
        raise ValidationError(
            [Problem(url, "not an s3://bucket/key URL", "e.g. s3://my-bucket/models/model.tar.gz")]
        )
    return parts


def fetch(url: str, profile: str | None = None, region: str | None = None, show_progress=True):
    """The object's bytes (model artifacts are kilobytes to a few megabytes)."""
    import botocore.exceptions

    bucket, key = split_s3_url(url)
    sess = aws.session(profile, region)
    try:
        s3 = aws.s3_client_for(sess, bucket)
        # HeadObject's ContentLength: "Size of the body in bytes" (AWS SDK reference,
        # HeadObjectResponse.contentLength, docs.aws.amazon.com/sdk-for-kotlin/api/latest/s3/
        # aws.sdk.kotlin.services.s3.model/-head-object-response/content-length.html): a file
        # larger than a model may be is refused before a byte is downloaded
        size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
        if size > MAX_ARCHIVE_BYTES:
            raise too_large(url, "the object is", size, MAX_ARCHIVE_BYTES)
        buf = io.BytesIO()
        bar = progress(total=size, desc="download", unit="B", enabled=show_progress)
        try:
            s3.download_fileobj(bucket, key, buf, Callback=bar.update)
        finally:
            bar.close()
    except botocore.exceptions.ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
            raise ValidationError(
                [Problem(url, "no such object", "check the bucket and key (aws s3 ls on it)")]
            ) from None
        if code in ("403", "AccessDenied"):
            raise ValidationError(
                [Problem(url, "access denied", "use credentials that may s3:GetObject it")]
            ) from None
        raise
    return buf.getvalue()
