"""`stackrun build [<name> ...]`: one deterministic zip per function package."""

from __future__ import annotations

import argparse
from pathlib import Path

from stackrun.commands import options
from stackrun.paths import artifact_dir

HELP = "build dist/lambdas/<name>.zip for every function in lambdas/"
DESCRIPTION = (
    "Build one deterministic zip per function package (lambdas/<name> whose "
    "pyproject.toml has [tool.fleet] lambda = true): its code, its local libraries and its "
    "locked third-party dependencies for the target runtime, without boto3/botocore, tests "
    "or caches. Skipped when the inputs have not changed. A manifest (<name>.json) beside "
    "each zip records its sha256 and size."
)


def add_parser(commands: options.Subcommands) -> argparse.ArgumentParser:
    parser = commands.add_parser("build", help=HELP, description=DESCRIPTION)
    parser.add_argument("names", nargs="*", help="only these functions (default: all)")
    parser.add_argument(
        "--arch",
        choices=("arm64", "x86_64"),
        default="arm64",
        help="target architecture (default: arm64)",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even when unchanged")
    parser.add_argument(
        "--relock",
        action="store_true",
        help="resolve third-party dependencies afresh (rewrites requirements.lock)",
    )
    return parser


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
