"""A deployed function version as the emulator holds it: configuration, code, runtime.

Everything comes from the emulator's Lambda API, as a client of AWS would see it: the alias
an integration points to is resolved to its version (GetAlias, with every invocation, through
the local API's cache, which a write to Lambda empties; a weighted alias picks the version per
invocation, see routing.py), the version's configuration
and code location are read (GetFunction), and the zip is downloaded from that location and
checked against CodeSha256 before it is extracted. Nothing is taken from the working tree, so
what runs is what was deployed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import random
import re
import shutil
import ssl
import subprocess
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackrun.errors import StackrunError
from stackrun.filelock import file_lock
from stackrun.local.api.routing import AliasRouting, RandomSource

# What the Lambda Python runtimes provide besides the function's zip: the runtime interface
# client and the AWS SDK (the builder leaves boto3/botocore out of the zips for that reason).
RUNTIME_PACKAGES = ("awslambdaric==4.2.2", "boto3==1.44.8")
_ARN = re.compile(r"^arn:[^:]+:lambda:[^:]+:\d{12}:function:(?P<name>[^:]+)(?::(?P<q>[^:]+))?$")


class LocalApiError(StackrunError):
    """The local API cannot serve (a function cannot be found, fetched or started)."""


@dataclass(frozen=True)
class FunctionVersion:
    """The configuration of one published version of a function, and where its code is."""

    name: str
    version: str
    invoked_arn: str  # what the integration names (the alias ARN)
    handler: str
    runtime: str
    timeout: int
    memory_size: int
    environment: dict[str, str]
    role: str
    code_sha256: str  # base64, as Lambda reports it
    architecture: str
    log_group: str
    code_location: str

    @property
    def key(self) -> tuple[str, ...]:
        """Changes whenever a new execution environment is needed."""
        return (
            self.name,
            self.version,
            self.code_sha256,
            self.handler,
            self.runtime,
            str(self.timeout),
            str(self.memory_size),
            json.dumps(self.environment, sort_keys=True),
            self.role,
        )


def split_function_arn(reference: str) -> tuple[str, str | None]:
    """(function name, qualifier) of a function ARN or name."""
    found = _ARN.match(reference)
    if found:
        return found.group("name"), found.group("q")
    name, _, qualifier = reference.partition(":")
    return name, qualifier or None


def resolve(
    lambda_client: Any, reference: str, random_source: RandomSource = random.random
) -> FunctionVersion:
    """The version `reference` (an alias ARN, a version ARN or a name) runs right now.

    An alias is read with every call (`lambda_client` may be the local API's cache, which a
    moved alias empties: it serves the next invocation); a weighted alias gives one of its
    versions, drawn by weight with `random_source`.
    """
    name, qualifier = split_function_arn(reference)
    version = qualifier or "$LATEST"
    try:
        if qualifier and qualifier != "$LATEST" and not qualifier.isdigit():
            alias = lambda_client.get_alias(FunctionName=name, Name=qualifier)
            version = AliasRouting.from_alias(alias).choose_version(random_source)
        response = lambda_client.get_function(FunctionName=name, Qualifier=version)
    except lambda_client.exceptions.ResourceNotFoundException as error:
        raise LocalApiError(f"function {reference} is not deployed: {error}") from error
    config = response["Configuration"]
    return FunctionVersion(
        name=name,
        version=str(config.get("Version") or version),
        invoked_arn=reference,
        handler=config.get("Handler") or "",
        runtime=config.get("Runtime") or "",
        timeout=int(config.get("Timeout") or 3),
        memory_size=int(config.get("MemorySize") or 128),
        environment=dict((config.get("Environment") or {}).get("Variables") or {}),
        role=config.get("Role") or "",
        code_sha256=config.get("CodeSha256") or "",
        architecture=(config.get("Architectures") or ["x86_64"])[0],
        log_group=(config.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{name}",
        code_location=(response.get("Code") or {}).get("Location") or "",
    )


def task_root(function: FunctionVersion, cache_dir: Path, ca_bundle: Path | None) -> Path:
    """The function's code extracted (once per code hash) under `cache_dir`."""
    digest = base64.b64decode(function.code_sha256).hex() if function.code_sha256 else "unknown"
    folder = cache_dir / function.name / digest[:20]
    with file_lock(cache_dir / f"{function.name}.lock"):
        if (folder / ".complete").is_file():
            return folder
        data = download_code(function, ca_bundle)
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(partial)
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
        (folder / ".complete").write_text(function.code_sha256 + "\n")
    return folder


def download_code(function: FunctionVersion, ca_bundle: Path | None) -> bytes:
    """The version's zip, from its code location, checked against its CodeSha256."""
    data = _download(function, ca_bundle)
    actual = base64.b64encode(hashlib.sha256(data).digest()).decode()
    if function.code_sha256 and actual != function.code_sha256:
        raise LocalApiError(
            f"the code of {function.name}:{function.version} does not match its CodeSha256 "
            f"({actual} != {function.code_sha256})"
        )
    return data


def _download(function: FunctionVersion, ca_bundle: Path | None) -> bytes:
    if not function.code_location.startswith(("https://", "http://")):
        raise LocalApiError(
            f"the emulator gives no downloadable code location for {function.name}:"
            f"{function.version} ({function.code_location or 'none'}); restart it with "
            "`nox -s emulator-stop` and deploy again"
        )
    context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    try:
        with urllib.request.urlopen(function.code_location, context=context, timeout=60) as reply:
            code: bytes = reply.read()
            return code
    except OSError as error:
        raise LocalApiError(
            f"could not download the code of {function.name}:{function.version} from "
            f"{function.code_location}: {error}"
        ) from error


def runtime_python(runtime: str, runtimes_dir: Path) -> Path:
    """The interpreter of a local environment like Lambda's `runtime` (python3.X only).

    A virtual environment per runtime holding RUNTIME_PACKAGES, created on first use from the
    machine's `python3.X` (found on PATH) and reused while the package list is the same.
    """
    found = re.fullmatch(r"python(3\.\d+)", runtime)
    if not found:
        raise LocalApiError(
            f"runtime {runtime!r} cannot run locally: only python3.X runtimes are supported"
        )
    folder = runtimes_dir / runtime
    python = folder / "bin" / "python"
    stamp = folder / ".stackrun-runtime"
    wanted = "\n".join(RUNTIME_PACKAGES) + "\n"
    with file_lock(runtimes_dir / f"{runtime}.lock"):
        if python.exists() and stamp.is_file() and stamp.read_text() == wanted:
            return python
        base = shutil.which(f"python{found.group(1)}")
        if base is None:
            raise LocalApiError(
                f"{runtime} is the functions' runtime, but python{found.group(1)} is not on "
                "PATH (with pyenv: `pyenv install` it and list it in PYENV_VERSION)"
            )
        shutil.rmtree(folder, ignore_errors=True)
        _run([base, "-m", "venv", str(folder)], f"create the {runtime} environment")
        _run(
            [str(python), "-m", "pip", "install", "--quiet", "--no-input", *RUNTIME_PACKAGES],
            f"install {', '.join(RUNTIME_PACKAGES)} into the {runtime} environment",
        )
        stamp.write_text(wanted)
    return python


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise LocalApiError(f"could not {what}:\n{tail}")


def host_architecture() -> str:
    machine = os.uname().machine
    return {"aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
