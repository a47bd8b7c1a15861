"""`stackrun release <env>`: print the release record, or record its integration-test result."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from stackrun.commands import context, options
from stackrun.commands.spec import Argument, Command
from stackrun.errors import StackrunError

COMMAND = Command(
    "release",
    help="print the environment's release record, or record its integration-test result",
    description="""
        Every successful deploy writes the environment's release record into its state bucket
        (<env>/_stackrun/release.json): the commit, and per function the Lambda version its
        `live` alias serves and the sha256 of that version's zip, read from Lambda. Without
        --tested: print the record as JSON. With --tested: record the integration-test result of
        the release that is live now (the nox integration and e2e sessions do this after
        pytest); refused when the record no longer matches what is live. `deploy <env>
        --promote-from <this env>` promotes only a passed release.
    """,
    arguments=(
        *options.ENV_ARGUMENTS,
        Argument(
            "--tested",
            choices=("passed", "failed"),
            help="record this integration-test result for the release live now",
        ),
        Argument(
            "--junit-xml",
            metavar="PATH",
            help="with --tested: pytest's --junitxml report, for the passed/failed/skipped counts",
        ),
    ),
)


def run(args: argparse.Namespace, root: Path) -> int:
    from stackrun.release import releases

    workspace = context.start(args, root, console=sys.stderr)  # stdout: the record only
    environment = workspace.environment
    if args.tested is None:
        if args.junit_xml:
            raise StackrunError("--junit-xml goes with --tested passed|failed")
        release = releases.read(workspace.target, environment)
        if release is None:
            print(f"{environment.name} has no release record (not deployed yet)", file=sys.stderr)
            return 1
        print(json.dumps(release.document(), indent=2, sort_keys=True))
        return 0
    counts = releases.junit_counts(Path(args.junit_xml)) if args.junit_xml else None
    release = releases.record_tested(workspace.target, environment, args.tested, counts)
    print(
        f"release of {environment.name} (commit {release.commit[:12]}, deployed "
        f"{release.deployed_at}): integration tests {args.tested}"
        + (f" ({', '.join(f'{k} {v}' for k, v in counts.items())})" if counts else "")
    )
    return 0
