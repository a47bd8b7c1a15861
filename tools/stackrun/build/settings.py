"""The build's fixed settings: what every artifact's inputs hash includes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Bump when the zip layout or the hashing changes: every cached artifact is then rebuilt.
BUILDER_VERSION = "1"
# zlib's default level (part of every artifact's inputs hash). Level 9 took three times the
# CPU (0.43 s against 0.15 s for a 7 MB function) for zips 0.5% smaller: a one-function deploy
# waited for it on every change.
COMPRESS_LEVEL = 6

ARCHITECTURES = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
IMPLEMENTATION = "cp"
# Provided by the Lambda Python runtime (and the copy powertools is meant to use).
EXCLUDED_DISTRIBUTIONS = frozenset({"boto3", "botocore", "s3transfer"})

Log = Callable[[str], Any]
