"""`stackrun completion bash|zsh`: the shell completion script, generated from the parser."""

from __future__ import annotations

import argparse
from pathlib import Path

from stackrun.commands.spec import Argument, Command

SHELLS = ("bash", "zsh")
COMMAND = Command(
    "completion",
    help="print the shell completion script for bash or zsh",
    description="""
        Print a completion script for stackrun's commands and options, generated from its
        parser (shtab).
    """,
    arguments=(Argument("shell", choices=SHELLS),),
    epilog="""\
Install it once:

  bash:  stackrun completion bash > ~/.local/share/bash-completion/completions/stackrun
  zsh:   mkdir -p ~/.zfunc && stackrun completion zsh > ~/.zfunc/_stackrun
         and in ~/.zshrc, before compinit: fpath=(~/.zfunc $fpath)
""",
    needs_repo=False,
    verbosity=False,
)


def run(args: argparse.Namespace, root: Path) -> int:
    import shtab

    from stackrun.cli import build_parser

    print(shtab.complete(build_parser(), shell=args.shell), end="")
    return 0
