"""`--stack` / `--exclude`: which of an environment's stacks a run goes through.

A pattern is a stack's folder name, `NAME+` (the stack and every stack downstream of it),
`+NAME` (the stack and every stack upstream of it) or `+NAME+` (both). Upstream and downstream
follow the dependency graph the configuration already holds: a stack's `[dependencies]` (whose
outputs it consumes) and its `after` (stackrun.config.Stack.upstream). Excluded stacks are
taken out after the expansion. Every name is checked before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stackrun.config import Environment, Stack
from stackrun.errors import StackrunError

Selection = frozenset[str]  # names of the selected stacks; None where a run takes them all


@dataclass(frozen=True)
class Pattern:
    """One --stack or --exclude value: a stack, with its upstream and/or downstream."""

    name: str
    upstream: bool = False
    downstream: bool = False

    @classmethod
    def parse(cls, text: str) -> Pattern:
        name = text.strip().removeprefix("+").removesuffix("+")
        return cls(name, upstream=text.startswith("+"), downstream=text.endswith("+"))


def select(
    environment: Environment, stacks: Sequence[str], excluded: Sequence[str] = ()
) -> Selection | None:
    """The stacks named by `--stack` (expanded) less those of `--exclude`; None without either
    option (every stack). Raises, naming the flag and value, for an unknown stack, a stack both
    named plainly and excluded, or a selection left empty."""
    if not stacks and not excluded:
        return None
    included = [_checked(environment, text, "--stack") for text in stacks]
    removed = [_checked(environment, text, "--exclude") for text in excluded]
    chosen = _expand(environment, included) if included else {s.name for s in environment.stacks}
    dropped = _expand(environment, removed)
    for pattern in included:
        if pattern.name in dropped and not (pattern.upstream or pattern.downstream):
            raise StackrunError(f"--stack {pattern.name} is also excluded by --exclude")
    selected = chosen - dropped
    if not selected:
        given = " ".join([*(f"--stack {t}" for t in stacks), *(f"--exclude {t}" for t in excluded)])
        raise StackrunError(f"{given}: no stack of {environment.name} is left to run")
    return frozenset(selected)


def _checked(environment: Environment, text: str, flag: str) -> Pattern:
    """The pattern of `text`, its stack one of the environment's; else a clear error."""
    pattern = Pattern.parse(text)
    names = [stack.name for stack in environment.stacks]
    if pattern.name not in names:
        raise StackrunError(
            f"{flag} {text}: {environment.name} has no stack {pattern.name!r}; its stacks "
            f"(live/{environment.name}/): {', '.join(names)}. A pattern is NAME, NAME+ (with "
            "the stacks downstream of it) or +NAME (with those upstream)"
        )
    return pattern


def _expand(environment: Environment, patterns: Iterable[Pattern]) -> set[str]:
    names: set[str] = set()
    for pattern in patterns:
        names.add(pattern.name)
        if pattern.upstream:
            names |= _closure(pattern.name, lambda name: environment.stack(name).upstream)
        if pattern.downstream:
            names |= _closure(pattern.name, lambda name: downstream(environment, name))
    return names


def _closure(start: str, neighbours: Callable[[str], Iterable[str]]) -> set[str]:
    """Every stack reachable from `start` by `neighbours` (without `start` itself)."""
    seen: set[str] = set()
    todo = list(neighbours(start))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(neighbours(name))
    return seen


def downstream(environment: Environment, name: str) -> tuple[str, ...]:
    """The stacks that wait for `name` directly (consume its outputs, or list it in `after`)."""
    return tuple(stack.name for stack in environment.stacks if name in stack.upstream)


def consumers(environment: Environment, name: str) -> tuple[str, ...]:
    """The stacks whose `[dependencies]` take an output of `name`."""
    return tuple(
        stack.name
        for stack in environment.stacks
        if any(ref.stack == name for dep in stack.dependencies for ref in dep.references)
    )


def consuming_downstream(environment: Environment, name: str, within: Collection[str]) -> set[str]:
    """The stacks of `within` that consume an output of `name`, directly or through other
    stacks of `within`."""
    return _closure(
        name, lambda upstream: [n for n in consumers(environment, upstream) if n in within]
    )


def in_order(stacks: Iterable[Stack], selection: Selection | None) -> list[Stack]:
    """`stacks` (in their order) that the selection holds; all of them without one."""
    return [stack for stack in stacks if selection is None or stack.name in selection]


def refuse_consumed_destroy(
    environment: Environment,
    selection: Selection | None,
    states: Mapping[str, dict[str, Any] | None],
) -> None:
    """A destroy of selected stacks refuses while a deployed stack outside the selection still
    consumes an output of one of them: its next plan would fail, or it would keep pointing at
    deleted resources. Names each such stack."""
    if selection is None:
        return
    blocking = {
        name: still
        for name in sorted(selection)
        if (
            still := [
                consumer
                for consumer in consumers(environment, name)
                if consumer not in selection and (states.get(consumer) or {}).get("resources")
            ]
        )
    }
    if not blocking:
        return
    lines = [f"refusing to destroy in {environment.name}: deployed stacks still consume outputs of"]
    lines += [f"  {name}: {', '.join(still)}" for name, still in blocking.items()]
    lines.append(
        "nothing was destroyed. Destroy them with it (e.g. --stack "
        f"{next(iter(blocking))}+), or destroy them first"
    )
    raise StackrunError("\n".join(lines))
