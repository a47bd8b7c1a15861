"""`stackrun graph <env> [--format text|dot|mermaid]`: the environment's stacks, their modules
and the outputs each consumes from which upstream stack."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from stackrun.commands import options
from stackrun.commands.spec import Argument, Command
from stackrun.config import Environment, load_environment
from stackrun.config.graph import Edge, edges

HELP = "print the environment's stacks and what each consumes from which (text, dot, mermaid)"
DESCRIPTION = (
    "Print the stacks of live/<env>/, the module each deploys, and for each stack the stacks "
    "it waits for: the outputs it consumes from each ([dependencies]), or `after` when it only "
    "waits for one. Sorted by stack name, so the output only changes when the config does. "
    "Reads live/ only (no terraform, no AWS). docs/architecture.md embeds dev's Mermaid graph "
    "(`nox -s docs` writes it, `nox -s lint` fails when it is stale)."
)
FORMATS = ("text", "dot", "mermaid")


COMMAND = Command(
    "graph",
    help=HELP,
    description=DESCRIPTION,
    arguments=(
        options.ENV,
        Argument(
            "--format",
            choices=FORMATS,
            default="text",
            help="text (default): one stack a line, its upstream stacks indented below it; dot: "
            "Graphviz; mermaid: a Mermaid flowchart (as in docs/architecture.md)",
        ),
    ),
    verbosity=False,
)


def run(args: argparse.Namespace, root: Path) -> int:
    environment = load_environment(root, args.env)
    renderers: dict[str, Callable[[Environment], list[str]]] = {
        "text": text,
        "dot": dot,
        "mermaid": mermaid,
    }
    print("\n".join(renderers[args.format](environment)))
    return 0


def _stacks(environment: Environment) -> list[tuple[str, str]]:
    """(stack, module name) of every stack, sorted by stack name."""
    return sorted((stack.name, stack.module.name) for stack in environment.stacks)


def _label(edge: Edge, separator: str) -> str:
    return separator.join(edge.outputs) if edge.outputs else "after"


def text(environment: Environment) -> list[str]:
    lines = [f"{environment.name}: {len(environment.stacks)} stacks"]
    by_stack: dict[str, list[Edge]] = {}
    for edge in edges(environment):
        by_stack.setdefault(edge.stack, []).append(edge)
    for name, module in _stacks(environment):
        lines.append(f"{name}  (module {module})")
        for edge in by_stack.get(name, []):
            lines.append(f"  <- {edge.upstream}: {_label(edge, ', ')}")
    return lines


def dot(environment: Environment) -> list[str]:
    lines = [f"digraph {json.dumps(environment.name)} {{", "  rankdir=LR;", "  node [shape=box];"]
    for name, module in _stacks(environment):
        label = json.dumps(f"{name}\nmodule: {module}")  # json's \n is dot's line break
        lines.append(f"  {json.dumps(name)} [label={label}];")
    for edge in edges(environment):
        style = "" if edge.outputs else ", style=dashed"
        label = json.dumps(_label(edge, "\n"))
        lines.append(
            f"  {json.dumps(edge.upstream)} -> {json.dumps(edge.stack)} [label={label}{style}];"
        )
    return [*lines, "}"]


def mermaid(environment: Environment) -> list[str]:
    lines = ["flowchart LR"]
    for name, module in _stacks(environment):
        lines.append(f'  {_node(name)}["{name}<br/>module: {module}"]')
    for edge in edges(environment):
        if edge.outputs:
            lines.append(
                f'  {_node(edge.upstream)} -- "{_label(edge, "<br/>")}" --> {_node(edge.stack)}'
            )
        else:
            lines.append(f"  {_node(edge.upstream)} -. after .-> {_node(edge.stack)}")
    return lines


def _node(stack: str) -> str:
    """A Mermaid node id (stack names start with a digit)."""
    return f"s{stack}"
