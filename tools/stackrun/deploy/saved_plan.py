"""Saved plans: `plan <env> --out DIR` writes them, `deploy <env> --plan DIR` applies exactly them.

The one owner of the plan folder and its manifest:

    DIR/manifest.json        what every plan was made from (below)
    DIR/<NNN_stack>.tfplan   terraform's plan file of each stack with changes

manifest.json: format, environment, account, region, commit (`git rev-parse HEAD`, or
"unknown"), terraform version, created_at, and per stack (directory order, the state backend's
stack first): status (changes | unchanged | pending), the state's lineage and serial at plan
time, the sha256 of the upstream values it was planned with (TF_VAR_* inputs; a hash, never
the values: some are sensitive), the sha256 of each function zip it deploys, its fingerprint
(stackrun.deploy.fingerprint: rendered configuration, module files, terraform version, provider
selections, inputs, state serial), the plan file's name and sha256, counts and resources.

`check` says, before anything is applied, why a stack's saved plan may not be applied: the
manifest is of another environment or account, a stack was not planned (pending), its state
changed since (lineage/serial), its plan file is missing or altered, a function zip differs,
its upstream values differ, or its configuration differs. `inputs_hash` is what `deploy
--plan` compares again after each upstream apply: a plan is never applied against values it
was not made with.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackrun.config import Environment
from stackrun.deploy.report import StackStatus
from stackrun.errors import StackrunError
from stackrun.provenance import file_sha256, git_commit

MANIFEST = "manifest.json"
FORMAT = 1


def inputs_hash(variables: dict[str, str]) -> str:
    """sha256 of the TF_VAR_* values a stack is planned with (never stored themselves)."""
    return hashlib.sha256(json.dumps(variables, sort_keys=True).encode()).hexdigest()


def state_identity(state: dict[str, Any] | None) -> dict[str, Any] | None:
    if not state:
        return None
    return {"lineage": state.get("lineage", ""), "serial": state.get("serial", 0)}


@dataclass
class Manifest:
    """A plan folder's manifest.json."""

    folder: Path
    document: dict[str, Any]

    @classmethod
    def new(cls, folder: Path, environment: Environment, terraform_version: str) -> Manifest:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in [*folder.glob("*.tfplan"), folder / MANIFEST]:
            stale.unlink(missing_ok=True)
        return cls(
            folder,
            {
                "format": FORMAT,
                "environment": environment.name,
                "account_id": environment.account_id,
                "region": environment.region,
                "commit": git_commit(environment.project.root),
                "terraform_version": terraform_version,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "stacks": [],
            },
        )

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        if not path.is_file():
            raise StackrunError(
                f"{folder} holds no saved plan ({MANIFEST} is missing): make one with "
                "`plan <env> --out DIR`"
            )
        try:
            document = json.loads(path.read_text())
        except ValueError as error:
            raise StackrunError(f"{path} is not valid JSON: {error}") from None
        if document.get("format") != FORMAT:
            raise StackrunError(
                f"{path}: format {document.get('format')!r} is not {FORMAT}; plan again"
            )
        return cls(folder, document)

    def save(self) -> None:
        (self.folder / MANIFEST).write_text(json.dumps(self.document, indent=2) + "\n")

    # ---- writing ----------------------------------------------------------------------------

    def add_pending(self, name: str, note: str) -> None:
        self.document["stacks"].append({"name": name, "status": StackStatus.PENDING, "note": note})

    def add(
        self,
        name: str,
        status: StackStatus,
        state: dict[str, Any] | None,
        variables: dict[str, str],
        artifacts: dict[str, str],
        fingerprint: str,
        plan_file: Path | None,
        report: dict[str, Any],
    ) -> None:
        entry: dict[str, Any] = {
            "name": name,
            "status": status,
            "state": state_identity(state),
            "inputs_sha256": inputs_hash(variables),
            "artifacts": dict(sorted(artifacts.items())),
            "fingerprint": fingerprint,
            "plan_file": None,
            "plan_sha256": None,
            "counts": report["counts"],
            "resources": report["resources"],
        }
        if plan_file is not None:
            target = self.folder / f"{name}.tfplan"
            target.write_bytes(plan_file.read_bytes())
            entry["plan_file"] = target.name
            entry["plan_sha256"] = file_sha256(target)
        self.document["stacks"].append(entry)

    # ---- reading ----------------------------------------------------------------------------

    @property
    def stacks(self) -> list[dict[str, Any]]:
        return list(self.document.get("stacks") or [])

    def stack(self, name: str) -> dict[str, Any] | None:
        return next((entry for entry in self.stacks if entry.get("name") == name), None)

    def plan_path(self, entry: dict[str, Any]) -> Path:
        return self.folder / str(entry["plan_file"])

    def check_environment(self, environment: Environment, stack_names: list[str]) -> None:
        """Refuse a manifest of another environment or account, or of other stacks."""
        document = self.document
        made_for = f"{document.get('environment')} (account {document.get('account_id')})"
        if (
            document.get("environment") != environment.name
            or document.get("account_id") != environment.account_id
        ):
            raise StackrunError(
                f"refusing to apply the saved plan in {self.folder}: it was made for {made_for}, "
                f"not {environment.name} (account {environment.account_id}); nothing was applied"
            )
        planned = [entry.get("name") for entry in self.stacks]
        if planned != stack_names:
            added = [name for name in stack_names if name not in planned]
            removed = [str(name) for name in planned if name not in stack_names]
            raise StackrunError(
                f"refusing to apply the saved plan in {self.folder}: the stacks of "
                f"{environment.name} changed since it was made"
                + (f" (new: {', '.join(added)})" if added else "")
                + (f" (gone: {', '.join(removed)})" if removed else "")
                + "; plan again. Nothing was applied"
            )

    def describe(self) -> str:
        document = self.document
        return (
            f"saved plan of {document.get('environment')} (account {document.get('account_id')}), "
            f"commit {str(document.get('commit'))[:12]}, made {document.get('created_at')}"
        )


@dataclass(frozen=True)
class Current:
    """What a stack would be applied with now."""

    state: dict[str, Any] | None
    variables: dict[str, str]
    artifacts: dict[str, str]
    fingerprint: str


def check(manifest: Manifest, entry: dict[str, Any], current: Current) -> str | None:
    """Why this stack's saved plan may not be applied now (None: it may)."""
    if entry.get("status") == StackStatus.PENDING:
        return (
            f"it was not planned ({entry.get('note') or 'pending'}): a saved plan cannot create "
            "an environment whose upstream stacks were never applied; deploy without --plan "
            "(or deploy the upstream stacks), then plan again"
        )
    planned_state = entry.get("state")
    state_now = state_identity(current.state)
    if planned_state != state_now:
        return f"its state changed since the plan ({_state_text(planned_state)} -> " + (
            f"{_state_text(state_now)}): another run applied it; plan again"
        )
    if entry.get("plan_file"):
        path = manifest.plan_path(entry)
        if not path.is_file():
            return f"its plan file {path.name} is missing"
        if file_sha256(path) != entry.get("plan_sha256"):
            return f"its plan file {path.name} was altered (sha256 differs from the manifest)"
    planned_artifacts = entry.get("artifacts") or {}
    for name in sorted(set(planned_artifacts) | set(current.artifacts)):
        before, now = planned_artifacts.get(name), current.artifacts.get(name)
        if before != now:
            return (
                f"function {name}'s zip differs from the one planned (sha256 {_short(before)} "
                f"in the plan, {_short(now)} now)"
            )
    if entry.get("inputs_sha256") != inputs_hash(current.variables):
        return "the values it takes from upstream stacks differ from those it was planned with"
    if entry.get("fingerprint") != current.fingerprint:
        return (
            "its configuration differs from the plan's (stack.toml inputs, env/project "
            "settings, its module's files, provider selections or terraform version)"
        )
    return None


def _state_text(state: dict[str, Any] | None) -> str:
    if not state:
        return "no state"
    return f"lineage {str(state.get('lineage'))[:8]}…, serial {state.get('serial')}"


def _short(digest: str | None) -> str:
    return digest[:12] if digest else "none"
