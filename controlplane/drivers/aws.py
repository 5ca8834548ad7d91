"""AWS through boto3: the S3 objects under a prefix (initial data imports), and errors.

The endpoint comes from boto3's own configuration (`AWS_ENDPOINT_URL_S3`,
`AWS_ENDPOINT_URL`, profiles), which is how tests point it at moto's server. botocore
errors are translated here, and only here, into `AwsError`: throttling, 5xx answers and
unreachable endpoints are retryable; a missing bucket, a refused request or missing
credentials are not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import botocore.exceptions  # type: ignore[import-untyped]

from controlplane.errors import AwsError
from controlplane.models.imports import SourceFile

__all__ = ["S3Objects", "boto_client", "split_url", "translated"]

_TRANSIENT_CODES = frozenset(
    {"Throttling", "ThrottlingException", "SlowDown", "RequestTimeout", "InternalError"}
)


def split_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix/` -> (`bucket`, `some/prefix/`)."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """botocore's exceptions -> AwsError naming `what`, retryable when transient."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        code = str(error.get("Code", ""))
        retryable = code in _TRANSIENT_CODES or status >= 500
        msg = f"{what}: {code or status} {error.get('Message', '')}".strip()
        raise AwsError(msg, retryable=retryable) from exc
    except botocore.exceptions.NoCredentialsError as exc:
        msg = f"{what}: no AWS credentials — set AWS_PROFILE or AWS_ACCESS_KEY_ID/SECRET"
        raise AwsError(msg) from exc
    except botocore.exceptions.BotoCoreError as exc:
        msg = f"{what}: {exc} — check the AWS endpoint and network, then try again"
        raise AwsError(msg, retryable=True) from exc


def boto_client(service: str, region: str | None) -> Any:
    """A boto3 client. boto3 loads here, not with the module: it costs a few tenths of a
    second, and most commands never call AWS (only S3 imports and exports do)."""
    import boto3  # type: ignore[import-untyped]  # noqa: PLC0415 - no stubs (boto3-stubs)

    return boto3.client(service, region_name=region)


@dataclass(frozen=True)
class S3Objects:
    """Reads every object under an S3 prefix (one level: no "folders" below it)."""

    region: str | None = None

    def read_prefix(self, url: str, suffixes: tuple[str, ...]) -> list[SourceFile]:
        """The objects directly under `url` whose names end in one of `suffixes`, by name."""
        bucket, prefix = split_url(url)
        client = boto_client("s3", self.region)
        keys: list[str] = []
        with translated(f"S3 list s3://{bucket}/{prefix}"):
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                keys.extend(str(item["Key"]) for item in page.get("Contents", ()))
        wanted = sorted(
            k for k in keys if "/" not in k[len(prefix) :] and k.lower().endswith(suffixes)
        )
        found = []
        for key in wanted:
            with translated(f"S3 read s3://{bucket}/{key}"):
                body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            found.append(SourceFile(key[len(prefix) :], bytes(body)))
        return found
