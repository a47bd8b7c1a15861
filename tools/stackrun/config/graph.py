"""The dependency graph of an environment's stacks: which outputs each stack consumes from
which upstream stack (its `[dependencies]` references), which stacks it only waits for
(`after`), and what lies downstream of a set of stacks. `stackrun graph` prints it,
`stackrun affected` follows it."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from stackrun.config.model import Environment, Stack


@dataclass(frozen=True)
class Edge:
    """`stack` waits for `upstream`: it consumes `outputs` of it (sorted), or, with none, only
    waits for it (`after`)."""

    upstream: str
    stack: str
    outputs: tuple[str, ...]


def consumed(stack: Stack) -> dict[str, tuple[str, ...]]:
    """Upstream stack -> the outputs of it this stack consumes (sorted; () for `after` only)."""
    outputs: dict[str, set[str]] = {name: set() for name in stack.upstream}
    for dependency in stack.dependencies:
        for reference in dependency.references:
            outputs[reference.stack].add(reference.output)
    return {name: tuple(sorted(outputs[name])) for name in sorted(outputs)}


def edges(environment: Environment) -> list[Edge]:
    """Every upstream -> stack edge of the environment, sorted by stack, then upstream."""
    return [
        Edge(upstream, stack.name, outputs)
        for stack in sorted(environment.stacks, key=lambda s: s.name)
        for upstream, outputs in consumed(stack).items()
    ]


def upstream(environment: Environment, names: Iterable[str]) -> set[str]:
    """Every stack that one of `names` waits for, transitively (`names` not included)."""
    return _reachable(names, lambda name: environment.stack(name).upstream)


def downstream(environment: Environment, names: Iterable[str]) -> set[str]:
    """Every stack that waits for one of `names`, transitively (`names` not included)."""
    waiting: dict[str, list[str]] = {stack.name: [] for stack in environment.stacks}
    for stack in environment.stacks:
        for name in stack.upstream:
            waiting.setdefault(name, []).append(stack.name)
    return _reachable(names, lambda name: waiting.get(name, ()))


def with_downstream(environment: Environment, names: Iterable[str]) -> set[str]:
    """`names` and every stack that waits for one of them, transitively."""
    return set(names) | downstream(environment, names)


def consumers(environment: Environment, name: str) -> tuple[str, ...]:
    """The stacks whose `[dependencies]` take an output of `name` (not those only `after` it)."""
    return tuple(stack.name for stack in environment.stacks if consumed(stack).get(name))


def consuming_downstream(environment: Environment, name: str, within: Collection[str]) -> set[str]:
    """The stacks of `within` that consume an output of `name`, directly or through other
    stacks of `within` (not those only `after` it: their plans use none of its outputs)."""
    return _reachable(
        [name], lambda upstream: [n for n in consumers(environment, upstream) if n in within]
    )


def _reachable(starts: Iterable[str], neighbours: Callable[[str], Iterable[str]]) -> set[str]:
    """Every stack reached from `starts` by following `neighbours` (`starts` not included,
    unless reached again)."""
    seen: set[str] = set()
    todo = [near for start in starts for near in neighbours(start)]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(neighbours(name))
    return seen
