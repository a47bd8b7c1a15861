"""`stackrun completion bash|zsh`: the shell completion script, generated from the parser."""

from __future__ import annotations

import argparse
from pathlib import Path

from stackrun.commands import options

SHELLS = ("bash", "zsh")
HELP = "print the shell completion script for bash or zsh"
DESCRIPTION = """\
Print a completion script for stackrun's commands and options, generated from its parser
(shtab). Install it once:

  bash:  stackrun completion bash > ~/.local/share/bash-completion/completions/stackrun
  zsh:   mkdir -p ~/.zfunc && stackrun completion zsh > ~/.zfunc/_stackrun
         and in ~/.zshrc, before compinit: fpath=(~/.zfunc $fpath)
"""


def add_parser(commands: options.Subcommands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "completion",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("shell", choices=SHELLS)
    parser.set_defaults(needs_repo=False)  # works outside the repository
    return parser


def run(args: argparse.Namespace, root: Path) -> int:
    import shtab

    from stackrun.cli import build_parser

    print(shtab.complete(build_parser(), shell=args.shell), end="")
    return 0
