"""`deploy <env> --promote-from <source>`: deploy exactly the zips live and tested in <source>.

No build. The source environment's release record (stackrun.release.releases) says which bytes are
live there and whether they passed its integration tests; Lambda says what is live now. Before
anything changes, every check below must pass, or the run refuses naming each problem:

- the source's release record exists and its test result is `passed`
- the source's record lists exactly the functions this environment deploys ("<stack>/<name>")
- each function's live version in the source has the sha256 the record has (its CodeSha256),
  and the zip downloaded from its code location has that sha256 too
- the source's architecture is this environment's `lambda_architecture`

Then the zips are written with build-style manifests into `.stackrun/<target>/<env>/promoted/`,
which the run deploys instead of dist/ (Workspace.promotion). Reading the source acts as the
source environment's plan role (read-only): in AWS the deploying job must be allowed to
assume it (docs/security.md).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackrun.config import Environment, load_environment
from stackrun.errors import StackrunError
from stackrun.paths import promoted_dir
from stackrun.release import releases

if TYPE_CHECKING:
    from stackrun.terraform.workspace import Workspace


class PromotionRefused(StackrunError):
    """The source's live artifacts cannot be promoted; nothing was changed."""


@dataclass(frozen=True)
class Promotion:
    """The source's release, its zips written into `artifact_dir` for this run to deploy."""

    source: str
    release: releases.Release
    artifact_dir: Path

    @property
    def provenance(self) -> dict[str, str]:
        """What the target's release record says about where its artifacts came from."""
        return {
            "environment": self.source,
            "commit": self.release.commit,
            "deployed_at": self.release.deployed_at,
        }


def prepare(
    workspace: Workspace, source_name: str, log: Callable[[str], None] = print
) -> Promotion:
    """Check the source's live release and write its zips for this run (see module doc)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return _prepare(workspace, source_name, log)
    except (BotoCoreError, ClientError, releases.ReleaseError) as error:
        raise PromotionRefused(
            f"refusing to promote {source_name} to {workspace.environment.name}; nothing was "
            f"changed: cannot read {source_name} as its plan role: {error}"
        ) from error


def _prepare(workspace: Workspace, source_name: str, log: Callable[[str], None]) -> Promotion:
    environment = workspace.environment
    if environment.promote_from != source_name:
        raise PromotionRefused(
            f"--promote-from {source_name}: live/{environment.name}/env.toml says "
            + (
                f'promote_from = "{environment.promote_from}"'
                if environment.promote_from
                else "nothing about promotion"
            )
            + f'; set promote_from = "{source_name}" there and apply both account baselines '
            f"(nox -s baseline -- {environment.name}; nox -s baseline -- {source_name}), "
            f"which let {environment.name}'s deploy role read {source_name} (docs/security.md)"
        )
    source = load_environment(environment.project.root, source_name)
    reader = workspace.target.as_role("plan")  # read-only, in the source's account
    refuse = _refusal(source_name, environment.name)
    release = releases.read(reader, source)
    if release is None:
        raise refuse(
            [f"{source_name} has no release record: deploy it and run its integration tests"]
        )
    problems = _untested(release) + _different_functions(release, environment)
    lambda_client = reader.client(source, "lambda")
    live = {}
    for key, recorded in sorted(release.functions.items()):
        version = releases.live_version(lambda_client, recorded.function_name)
        live[key] = version
        live_sha = releases.hex_digest(version.code_sha256)
        if live_sha != recorded.sha256:
            problems.append(
                f"{key} ({recorded.function_name}): live in {source_name} as version "
                f"{version.version} with sha256 {live_sha}, but {source_name}'s release record "
                f"has sha256 {recorded.sha256} (version {recorded.version})"
            )
        if version.architecture != environment.lambda_architecture:
            problems.append(
                f"{key}: {version.architecture} in {source_name}, but {environment.name} "
                f"deploys {environment.lambda_architecture} (env.toml lambda_architecture)"
            )
    if problems:
        raise refuse(problems)
    zips = _download(reader, release, live, source_name, refuse)
    log(
        f"promoting from {source_name}: commit {release.commit[:12]}, deployed "
        f"{release.deployed_at}, tests passed {release.tested.get('at') if release.tested else ''}"
    )
    artifact_dir = promoted_dir(workspace.cache_dir)
    _write(artifact_dir, zips, live, source_name)
    for name, (sha256, _) in sorted(zips.items()):
        log(f"  {name}: sha256 {sha256} (the bytes live in {source_name}; no build)")
    return Promotion(source_name, release, artifact_dir)


def _refusal(source: str, target: str) -> Callable[[list[str]], PromotionRefused]:
    def refuse(problems: list[str]) -> PromotionRefused:
        return PromotionRefused(
            f"refusing to promote {source} to {target}; nothing was changed:\n  "
            + "\n  ".join(problems)
        )

    return refuse


def _untested(release: releases.Release) -> list[str]:
    where = f"the release live in {release.environment} (commit {release.commit[:12]}, deployed "
    where += f"{release.deployed_at})"
    if not release.tested:
        return [
            f"{where} has no integration-test result: run `nox -s integration -- "
            f"{release.environment}`, which records it"
        ]
    if release.tested.get("result") != "passed":
        return [
            f"{where} {release.tested.get('result')} its integration tests "
            f"({release.tested.get('at')}): only a passed release is promoted"
        ]
    return []


def _different_functions(release: releases.Release, environment: Environment) -> list[str]:
    wanted, recorded = releases.function_keys(environment), set(release.functions)
    problems = [
        f"{key}: deployed by {environment.name}, but not in {release.environment}'s release"
        for key in sorted(wanted - recorded)
    ]
    problems += [
        f"{key}: in {release.environment}'s release, but not deployed by {environment.name}"
        for key in sorted(recorded - wanted)
    ]
    return problems


def _download(
    reader: Any,
    release: releases.Release,
    live: Mapping[str, Any],
    source: str,
    refuse: Callable[[list[str]], PromotionRefused],
) -> dict[str, tuple[str, bytes]]:
    """function name (lambdas/<name>) -> (sha256, zip bytes), each checked against the record."""
    from stackrun.local.api.functions import LocalApiError, download_code

    zips: dict[str, tuple[str, bytes]] = {}
    problems = []
    for key, recorded in sorted(release.functions.items()):
        name = key.split("/", 1)[1]
        try:
            data = download_code(live[key], reader.ca_bundle)
        except LocalApiError as error:
            raise refuse([f"{key}: {error}"]) from error
        sha256 = hashlib.sha256(data).hexdigest()
        if sha256 != recorded.sha256:
            problems.append(
                f"{key} ({recorded.function_name}): the code downloaded from {source} has sha256 "
                f"{sha256}, {source}'s release record has {recorded.sha256}"
            )
        elif name in zips and zips[name][0] != sha256:
            problems.append(
                f"{key}: {name} is live in {source} with two different zips "
                f"({zips[name][0]} and {sha256})"
            )
        zips[name] = (sha256, data)
    if problems:
        raise refuse(problems)
    return zips


def _write(
    artifact_dir: Path,
    zips: Mapping[str, tuple[str, bytes]],
    live: Mapping[str, Any],
    source: str,
) -> None:
    """The zips and their manifests, in the format stackrun.build writes."""
    shutil.rmtree(artifact_dir, ignore_errors=True)
    artifact_dir.mkdir(parents=True)
    versions = {key.split("/", 1)[1]: version for key, version in live.items()}
    for name, (sha256, data) in zips.items():
        version = versions[name]
        (artifact_dir / f"{name}.zip").write_bytes(data)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            files = len(archive.namelist())
        manifest = {
            "name": name,
            "sha256": sha256,
            "base64_sha256": version.code_sha256,
            "size": len(data),
            "handler": version.handler,
            "architecture": version.architecture,
            "python_version": version.runtime.removeprefix("python"),
            "inputs_sha256": None,  # not built here: promoted
            "files": files,
            "promoted_from": {
                "environment": source,
                "function_name": version.name,
                "version": version.version,
            },
        }
        (artifact_dir / f"{name}.json").write_text(json.dumps(manifest, indent=2) + "\n")


def verify(workspace: Workspace, promotion: Promotion) -> None:
    """After the deploy: each function of this environment is live with the source's bytes."""
    environment = workspace.environment
    release = releases.read(workspace.target, environment)
    problems = []
    for key, recorded in sorted(promotion.release.functions.items()):
        mine = release.functions.get(key) if release else None
        if mine is None or mine.sha256 != recorded.sha256:
            problems.append(
                f"{key}: live in {environment.name} with sha256 "
                f"{mine.sha256 if mine else 'none'}, promoted {recorded.sha256}"
            )
    if problems:
        raise StackrunError(
            f"the deploy of {environment.name} did not leave {promotion.source}'s code live:\n  "
            + "\n  ".join(problems)
        )
