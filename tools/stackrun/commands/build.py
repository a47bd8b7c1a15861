"""`stackrun build [<name> ...]`: one deterministic zip per function package."""

from __future__ import annotations

import argparse
from pathlib import Path

from stackrun.commands.spec import Argument, Command, flag
from stackrun.paths import artifact_dir

COMMAND = Command(
    "build",
    help="build dist/lambdas/<name>.zip for every function in lambdas/",
    description="""
        Build one deterministic zip per function package (lambdas/<name> whose pyproject.toml
        has [tool.fleet] lambda = true): its code, its local libraries and its locked
        third-party dependencies for the target runtime, without boto3/botocore, tests or
        caches. Skipped when the inputs have not changed. A manifest (<name>.json) beside each
        zip records its sha256 and size.
    """,
    arguments=(
        Argument("names", nargs="*", help="only these functions (default: all)"),
        Argument(
            "--arch",
            choices=("arm64", "x86_64"),
            default="arm64",
            help="target architecture (default: arm64)",
        ),
        flag("--force", "rebuild even when unchanged"),
        flag("--relock", "resolve third-party dependencies afresh (rewrites requirements.lock)"),
    ),
)


def run(args: argparse.Namespace, root: Path) -> int:
    from stackrun.build import build_all

    out_dir = artifact_dir(root, args.arch)
    artifacts = build_all(
        root,
        out_dir=out_dir,
        architecture=args.arch,
        force=args.force,
        relock=args.relock,
        only=args.names or None,
    )
    rebuilt = sum(artifact.rebuilt for artifact in artifacts)
    print(f"{len(artifacts)} function(s), {rebuilt} rebuilt, in {out_dir}")
    return 0
