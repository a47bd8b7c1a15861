"""The dependency graph of an environment's stacks: which outputs each stack consumes from
which upstream stack (its `[dependencies]` references), which stacks it only waits for
(`after`), and what lies downstream of a set of stacks. `stackrun graph` prints it,
`stackrun affected` follows it."""

from __future__ import annotations

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


def with_downstream(environment: Environment, names: set[str]) -> set[str]:
    """`names` and every stack that waits for one of them, transitively."""
    selected = set(names)
    changed = True
    while changed:
        changed = False
        for stack in environment.stacks:
            if stack.name not in selected and selected.intersection(stack.upstream):
                selected.add(stack.name)
                changed = True
    return selected
