"""A command declared as data: its name, help, description and arguments. `stackrun.cli`
builds the parsers from these, so no command module repeats the argparse calls."""

from __future__ import annotations

import argparse
import shutil
import textwrap
from dataclasses import dataclass
from typing import Any, TypeAlias

# What Command.add_to adds a subcommand to.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class Argument:
    """One `add_argument` call as data: its name (or flags) and its keywords; a help text is
    written as prose (white space folded)."""

    def __init__(self, *names: str, **settings: Any) -> None:
        self.names = names
        self.settings = settings
        if "help" in settings:
            settings["help"] = _prose(settings["help"])

    def but(self, **changes: Any) -> Argument:
        """The same argument with some keywords changed, e.g. another help text."""
        return Argument(*self.names, **{**self.settings, **changes})

    def add_to(self, parser: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup) -> None:
        parser.add_argument(*self.names, **self.settings)


def flag(name: str, help: str) -> Argument:
    """An on/off option: False unless given."""
    return Argument(name, action="store_true", help=help)


class Exclusive:
    """Arguments of which a command line may give one at the most."""

    def __init__(self, *arguments: Argument) -> None:
        self.arguments = arguments

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_mutually_exclusive_group()
        for argument in self.arguments:
            argument.add_to(group)


@dataclass(frozen=True)
class Command:
    """A subcommand: `help` is its line in `stackrun --help`; the description is written as
    prose (white space folded); an epilog is printed as written (add_to wraps the description
    then)."""

    name: str
    help: str
    description: str
    arguments: tuple[Argument | Exclusive, ...] = ()
    epilog: str | None = None
    # False: runs anywhere, not only inside the repository (its run gets the working folder)
    needs_repo: bool = True
    # False: prints a result and nothing else, so -q/-v after the command would mean nothing
    verbosity: bool = True

    def add_to(self, commands: Subcommands) -> argparse.ArgumentParser:
        description = _prose(self.description)
        layout: dict[str, Any] = {}
        if self.epilog is not None:
            # printed as written, so the description is wrapped here as argparse would
            description = textwrap.fill(description, shutil.get_terminal_size().columns - 2)
            layout = {
                "epilog": self.epilog,
                "formatter_class": argparse.RawDescriptionHelpFormatter,
            }
        parser = commands.add_parser(self.name, help=self.help, description=description, **layout)
        for argument in self.arguments:
            argument.add_to(parser)
        parser.set_defaults(needs_repo=self.needs_repo)
        return parser


def _prose(text: str) -> str:
    """A text written over several indented lines, as one line."""
    return " ".join(text.split())
