"""Where a run keeps its generated files and logs, and how it runs terraform there.

The folders (a working dir and a log per stack, under `.stackrun/<target>/<env>/`) are laid
out by paths.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from stackrun import terminal
from stackrun.aws.target import Target
from stackrun.config import Environment, Stack
from stackrun.errors import StackrunError
from stackrun.filelock import file_lock
from stackrun.paths import (
    artifact_dir,
    cache_root,
    environment_dir,
    init_lock_file,
    init_marker,
    stack_log_file,
    stack_workdir,
)
from stackrun.release.pins import Pin
from stackrun.release.pins import read as read_pins
from stackrun.terraform import (
    INIT_LOCKFILE,
    LOCK_FILE_NAME,
    Result,
    Terraform,
    cli_config_env,
    copy_provider_lock,
)
from stackrun.terraform.render import BACKEND_FILE, MAIN_FILE, artifact_inputs, render_stack

if TYPE_CHECKING:
    from stackrun.release.promote import Promotion


@dataclass
class Workspace:
    """One environment on one target: paths, terraform environment, console."""

    environment: Environment
    target: Target
    console: IO[str] = field(default_factory=lambda: sys.stdout)
    lock_timeout: str | None = None
    prefix_output: bool = False
    # deploy --promote-from: another environment's live zips, deployed instead of a build
    promotion: Promotion | None = None

    def __post_init__(self) -> None:
        project_root = self.environment.project.root
        root = cache_root(project_root)
        self.cache_dir = environment_dir(project_root, self.target.name, self.environment.name)
        self._pins: dict[str, Pin] | None = None
        self.base_env = self.target.subprocess_env()
        self.base_env.update(cli_config_env(root, self.environment.project.provider_mirror))
        if self.target.local:
            self._register_with_emulator()

    def _register_with_emulator(self) -> None:
        """Tell the emulator where the local runtimes are: its Lambda Invoke runs the
        account's functions in them (emulator/invoke.py)."""
        from stackrun.local.emulator.invoke import register
        from stackrun.paths import runtimes_dir

        assert self.target.ca_bundle is not None
        register(
            self.target.ca_bundle,
            self.environment.account_id,
            runtimes_dir(self.environment.project.root),
        )

    @property
    def effective_lock_timeout(self) -> str:
        return self.lock_timeout or self.environment.project.lock_timeout

    def workdir(self, stack_name: str) -> Path:
        return stack_workdir(self.cache_dir, stack_name)

    def log_file(self, stack_name: str) -> Path:
        return stack_log_file(self.cache_dir, stack_name)

    def terraform(self, stack_name: str, fresh_log: bool = False, quiet: bool = False) -> Terraform:
        """The stack's terraform; `quiet`: its output to the stack's log only (not the console
        or the status block), for work done ahead of the stack's turn."""
        log = self.log_file(stack_name)
        if fresh_log and log.exists():
            log.unlink()
        prefix = f"[{stack_name}] " if self.prefix_output else ""

        def phase(command: str) -> None:
            terminal.current().phase(stack_name, command)

        def release_state_lock(since: float) -> None:
            from stackrun.deploy.unlock import release_after_kill

            release_after_kill(self, stack_name, since)

        return Terraform(
            self.workdir(stack_name),
            self.base_env,
            log,
            prefix,
            self.console,
            echo=terminal.current().shows_terraform and not quiet,
            on_killed=release_state_lock,
            on_command=None if quiet else phase,
        )

    def render(
        self,
        stack: Stack,
        sensitive_inputs: frozenset[str] = frozenset(),
        held: Mapping[str, str] | None = None,
    ) -> Path:
        """Write the stack's working directory. `held`: function -> the version its live alias
        stays on for this render (a canary's stable version); a rollback's pin wins."""
        workdir = self.workdir(stack.name)
        functions = None
        if stack.lambdas_input is not None:
            pinned = {name: pin.version for name, pin in self.pins().items()}
            functions = artifact_inputs(
                stack, workdir, self.manifests(stack), self.artifact_dir, {**(held or {}), **pinned}
            )
        render_stack(self.environment, stack, self.target, workdir, sensitive_inputs, functions)
        copy_provider_lock(self.environment.project.root, workdir)
        return workdir

    def pins(self) -> dict[str, Pin]:
        """The environment's pinned functions (read once per run; pins.py)."""
        if self._pins is None:
            self._pins = read_pins(self.environment, self.target.client(self.environment, "s3"))
        return self._pins

    @property
    def artifact_dir(self) -> Path:
        if self.promotion is not None:
            return self.promotion.artifact_dir
        return artifact_dir(self.environment.project.root, self.environment.lambda_architecture)

    def manifests(self, stack: Stack) -> dict[str, dict[str, Any]]:
        """The build manifests of the stack's functions (they must have been built)."""
        manifests = {}
        for name in stack.functions:
            path = self.artifact_dir / f"{name}.json"
            if not path.is_file():
                raise StackrunError(
                    f"stack {stack.name} deploys lambdas/{name}, but {path} does not exist: "
                    "build first (nox -s build, or stackrun build)"
                )
            manifests[name] = json.loads(path.read_text())
        return manifests

    # ---- init -------------------------------------------------------------------------------

    def init_fingerprint(self, stack: Stack) -> str:
        """What `terraform init` depends on: backend, terraform settings, module tree calls."""
        workdir = self.workdir(stack.name)
        digest = hashlib.sha256()
        digest.update((workdir / BACKEND_FILE).read_bytes())
        main = json.loads((workdir / MAIN_FILE).read_text())
        digest.update(json.dumps([main["terraform"], main["module"]["stack"]["source"]]).encode())
        for tf_file in sorted(stack.module.path.rglob("*.tf")):
            text = tf_file.read_text(encoding="utf-8", errors="replace")
            if "module " in text or "required_providers" in text:
                digest.update(tf_file.name.encode() + text.encode())
        digest.update(self.base_env.get("TF_CLI_CONFIG_FILE", "").encode())
        digest.update((workdir / LOCK_FILE_NAME).read_bytes())
        return digest.hexdigest()

    def ensure_init(self, stack: Stack, tf: Terraform) -> Result | None:
        """Run `terraform init` unless the workdir is initialised for the same inputs."""
        workdir = self.workdir(stack.name)
        fingerprint = self.init_fingerprint(stack)
        marker = init_marker(workdir)
        initialised = (workdir / ".terraform").is_dir() and marker.is_file()
        if initialised and marker.read_text().strip() == fingerprint:
            return None
        if self.base_env.get("TF_PLUGIN_CACHE_DIR"):
            # Terraform's plugin cache is not safe for concurrent inits (hashicorp/terraform
            # #31964): stacks side by side, or several environments, init one at a time.
            with file_lock(init_lock_file(self.environment.project.root)):
                result = tf.run("init", "-input=false", "-no-color", "-reconfigure", INIT_LOCKFILE)
        else:  # an unpacked mirror is only read: inits may run side by side
            result = tf.run("init", "-input=false", "-no-color", "-reconfigure", INIT_LOCKFILE)
        if result.returncode == 0:
            self.mark_initialised(stack, fingerprint)
        elif marker.exists():
            marker.unlink()
        return result

    def mark_initialised(self, stack: Stack, fingerprint: str | None = None) -> None:
        """Record that the stack's working dir is initialised for its current inputs (after an
        init stackrun ran itself, such as the bootstrap's -migrate-state)."""
        fingerprint = fingerprint if fingerprint is not None else self.init_fingerprint(stack)
        init_marker(self.workdir(stack.name)).write_text(fingerprint + "\n")

    def forget_init(self, stack_name: str) -> None:
        workdir = self.workdir(stack_name)
        init_marker(workdir).unlink(missing_ok=True)
        shutil.rmtree(workdir / ".terraform", ignore_errors=True)
