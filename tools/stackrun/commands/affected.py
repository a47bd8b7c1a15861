"""`stackrun affected [--since REF]`: JSON of the environments and stacks whose inputs changed
since REF (default: the merge base of HEAD with main)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stackrun.affected import affected, changed_paths, resolve_since
from stackrun.commands.spec import Argument, Command

HELP = "JSON of the environments and stacks a change touches (since a git commit)"
DESCRIPTION = (
    "Print, as JSON, the environments and stacks whose inputs changed since REF, committed or "
    "not: live/project.toml (every stack), live/<env>/env.toml (that environment), "
    "live/_defaults/<stack>.toml (that stack everywhere), live/<env>/<stack>/, the stack's "
    "module and the local modules it calls, modules/.terraform.lock.hcl (every stack), the "
    "functions the stack builds (lambdas/<name>/) and the local libraries they depend on "
    "(their pyproject.toml, e.g. lambdas/fleet_common/), and every stack downstream of an "
    "affected one. Output: "
    '{"since": "HEAD~1", "commit": "<its sha>", "environments": {"dev": ["030_api"], ...}} '
    '("since" is "merge-base(HEAD, main)" by default), environments with nothing affected '
    "left out, stacks sorted. CI plans only these environments."
)

SINCE_HELP = (
    "a branch, tag or commit, e.g. origin/main or HEAD~1 (default: the merge base of HEAD with "
    "main, else origin/main)"
)


COMMAND = Command(
    "affected",
    help=HELP,
    description=DESCRIPTION,
    arguments=(Argument("--since", metavar="REF", help=SINCE_HELP),),
    verbosity=False,
)


def run(args: argparse.Namespace, root: Path) -> int:
    since, commit = resolve_since(root, args.since)
    environments = affected(root, changed_paths(root, commit))
    print(json.dumps({"since": since, "commit": commit, "environments": environments}, indent=2))
    return 0
