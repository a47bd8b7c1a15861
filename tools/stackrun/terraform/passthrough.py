"""The terraform commands `stackrun tf` passes through, and what each does to a stack's state.

Every command is classified before anything runs:

- refused: `apply` and `destroy` (they would change the environment outside stackrun's
  pipeline: no fingerprint, invocations, canaries or release record; `stackrun deploy` and
  `stackrun destroy` are the way), `init` (stackrun initialises the working dir itself, with the
  repository's provider lock read-only), `workspace new|select|delete` (every stack lives in
  terraform's default workspace), and any command not listed below;
- state-writing (WRITES_STATE): run under the environment guard, after the typed confirmation
  of a protected environment;
- read-only (READS): run as they are.

Terraform's state lock is always taken: `-lock` is refused, and the commands that lock
(LOCKING) get stackrun's `-lock-timeout` (`--lock-timeout`, else live/project.toml's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stackrun.errors import StackrunError

Words = tuple[str, ...]

# Commands with subcommands: `terraform state mv` is the command ("state", "mv").
GROUPS = frozenset({"state", "workspace", "providers", "metadata"})

WRITES_STATE: frozenset[Words] = frozenset(
    {
        ("state", "mv"),
        ("state", "rm"),
        ("state", "push"),
        ("state", "replace-provider"),
        ("import",),
        ("taint",),
        ("untaint",),
        ("refresh",),
        ("force-unlock",),
    }
)

READS: frozenset[Words] = frozenset(
    {
        (),  # terraform -help, terraform -version
        ("state",),
        ("state", "list"),
        ("state", "show"),
        ("state", "pull"),
        ("state", "identities"),
        ("console",),
        ("output",),
        ("show",),
        ("plan",),
        ("providers",),
        ("providers", "schema"),
        ("validate",),
        ("graph",),
        ("version",),
        ("modules",),
        ("metadata", "functions"),
        ("workspace", "list"),
        ("workspace", "show"),
    }
)

# The commands that take the state lock, and so a -lock-timeout.
LOCKING: frozenset[Words] = frozenset(
    {
        ("plan",),
        ("refresh",),
        ("import",),
        ("taint",),
        ("untaint",),
        ("state", "mv"),
        ("state", "rm"),
        ("state", "push"),
        ("state", "replace-provider"),
    }
)

REFUSED: dict[Words, str] = {
    ("apply",): "it would change the environment outside stackrun's pipeline (no fingerprint, "
    "invocations, canaries or release record): use `stackrun deploy <env>` (nox -s deploy)",
    ("destroy",): "it would change the environment outside stackrun's pipeline: use "
    "`stackrun destroy <env>` (nox -s destroy)",
    ("init",): "stackrun initialises the stack's working directory itself (backend, provider "
    "lock read-only) before every command",
    ("workspace", "new"): "every stack lives in terraform's default workspace",
    ("workspace", "select"): "every stack lives in terraform's default workspace",
    ("workspace", "delete"): "every stack lives in terraform's default workspace",
}

# Options stackrun owns: terraform always takes its state lock, with stackrun's timeout, in the
# stack's working directory.
OWNED_OPTIONS = {
    "lock": "stackrun never runs terraform without its state lock",
    "lock-timeout": "pass stackrun's --lock-timeout (before `--`) instead",
    "chdir": "stackrun runs terraform in the stack's working directory",
}


@dataclass(frozen=True)
class TerraformCommand:
    """The terraform arguments given after `--`, classified."""

    args: tuple[str, ...]
    words: Words  # the command: ("state", "mv")
    end: int  # the index in `args` just after the command's words

    @property
    def name(self) -> str:
        return " ".join(("terraform", *self.words))

    @property
    def writes_state(self) -> bool:
        return self.words in WRITES_STATE

    def argv(self, lock_timeout: str) -> list[str]:
        """The arguments to run: `-lock-timeout` added right after a locking command's words
        (options go before its positional arguments)."""
        if self.words not in LOCKING:
            return list(self.args)
        return [*self.args[: self.end], f"-lock-timeout={lock_timeout}", *self.args[self.end :]]


def _command_words(args: Sequence[str]) -> tuple[Words, int]:
    """The command's words and the index after them: global options (-help, -version) come
    first, then the command, then, for a group, its subcommand."""
    index = 0
    while index < len(args) and args[index].startswith("-"):
        index += 1
    if index == len(args):
        return (), index
    words: Words = (args[index],)
    index += 1
    if words[0] in GROUPS and index < len(args) and not args[index].startswith("-"):
        words += (args[index],)
        index += 1
    return words, index


def _check_options(args: Sequence[str]) -> None:
    for arg in args:
        if not arg.startswith("-"):
            continue
        name = arg.lstrip("-").split("=", 1)[0]
        if name in OWNED_OPTIONS:
            raise StackrunError(f"terraform option {arg!r} is not allowed: {OWNED_OPTIONS[name]}")


def classify(args: Sequence[str]) -> TerraformCommand:
    """The command `args` run, or an error naming why stackrun does not run it."""
    _check_options(args)
    words, end = _command_words(args)
    command = TerraformCommand(tuple(args), words, end)
    if words in REFUSED:
        raise StackrunError(f"`{command.name}` is not run through stackrun tf: {REFUSED[words]}")
    if words not in WRITES_STATE and words not in READS:
        known = sorted(" ".join(words) for words in READS | WRITES_STATE if words)
        raise StackrunError(
            f"`{command.name}` is not a command stackrun tf runs; it runs: {', '.join(known)}"
        )
    return command
