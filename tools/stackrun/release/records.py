"""stackrun's own records of an environment: JSON objects in its state bucket, beside the states.

Key format: Environment.record_key(<record>) = <env>/_stackrun/<record>.json (and, through
read_object/write_object, each stack's applied record: deploy/fingerprint.py). Written
with the deploy role (plan reads them with the plan role); the bucket's default encryption,
versioning and TLS-only policy apply as to the states.
"""

from __future__ import annotations

import json
from typing import Any

from stackrun.errors import StackrunError


def location(environment: Any, record: str) -> tuple[str, str]:
    return environment.backend.bucket, environment.record_key(record)


def read(environment: Any, s3: Any, record: str) -> dict[str, Any]:
    """The record's document ({} when none was written yet, or no backend exists yet)."""
    return read_object(s3, *location(environment, record))


def write(environment: Any, s3: Any, record: str, document: dict[str, Any]) -> None:
    write_object(s3, *location(environment, record), document)


def read_object(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    """A JSON object stored at `key` ({} when it is not there, or the bucket is not)."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (s3.exceptions.NoSuchKey, s3.exceptions.NoSuchBucket):
        return {}
    try:
        document = json.loads(body)
    except ValueError as error:
        raise StackrunError(
            f"s3://{bucket}/{key} is not JSON ({error}); fix or delete it"
        ) from None
    if not isinstance(document, dict):
        raise StackrunError(f"s3://{bucket}/{key} is not a JSON object; fix or delete it")
    return document


def write_object(s3: Any, bucket: str, key: str, document: dict[str, Any]) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(document, indent=2, sort_keys=True).encode(),
        ContentType="application/json",
    )
