"""The inputs of every stack as .tfvars.json files, for policy scans of modules as deployed.

checkov scans a module with the values an environment gives it (`checkov -d modules/<m>
--var-file <env>.<stack>.tfvars.json`), so a check sees prod's deletion protection and dev's
retention, not only the module's defaults. Inputs that come from other stacks' outputs are
unknown before a deploy and are left out; the function inputs of `[lambdas]` stacks are
given without the zip fields stackrun fills in at deploy time.
"""

from __future__ import annotations

import json
from pathlib import Path

from stackrun.config import list_environments, load_environment


def write_stack_inputs(root: Path, out_dir: Path) -> list[tuple[Path, Path, str]]:
    """(module dir, var file, comma-separated skipped check ids) for every stack."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in list_environments(root):
        environment = load_environment(root, name)
        for stack in environment.stacks:
            path = out_dir / f"{name}.{stack.name}.tfvars.json"
            path.write_text(json.dumps(dict(stack.inputs), indent=2, sort_keys=True) + "\n")
            written.append((stack.module.path, path, ",".join(sorted(stack.policy_skips))))
    return written
