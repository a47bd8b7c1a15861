"""Helpers of deploy_bench.py's floors and comparisons: provider waits, fresh copies, the table.

The cold floor is what the AWS provider itself waits for: per stack, the longest single
resource apply (terraform's `apply_complete` event, `elapsed_seconds`), summed along the
longest path of the stack graph (stacks that wait for each other: a chain sums every stack;
stacks that may run side by side count once, the longer one). A stack cannot finish before
its slowest resource, nor start before its upstream stacks finished: a lower bound of the
wall time no runner can beat (it leaves out terraform's own plan, refresh and start-up).

stackrun writes each stack's terraform output to `.stackrun/<target>/<env>/logs/<stack>.log`
(stackrun.paths.stack_log_file). It runs plan and apply with `-json` but logs each event's
human message (stackrun.terraform.tfjson.render), not the JSON: an `apply_complete` event is
logged as its `@message`, "<address>: Creation complete after 2m40s [id=...]", where the
duration is the event's `elapsed_seconds` (terraform formats the same whole seconds as a Go
duration). So the floor reads those lines from the logs of the timed run (older ones removed).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

# terraform's message of an apply_complete event (views/json/hook.go)
_COMPLETE = re.compile(
    r"^(?P<address>\S+): \w+ complete after (?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?P<s>\d+)s\b"
)

# case -> (what it is compared to, the ratio's meaning, target)
# ratio "others/stackrun" must reach the target; "stackrun/others" must stay at or under it
CASES = {
    "cold": ("baseline loop", "others/stackrun", 1.0),
    "cold floor": ("provider waits (floor)", "stackrun/others", 1.3),
    "repeat": ("baseline loop", "others/stackrun", 10.0),
    "input": ("baseline loop", "others/stackrun", 3.0),
    "lambda": ("baseline loop", "others/stackrun", 3.0),
    "lambda floor": ("the stack's terraform apply (floor)", "stackrun/others", 1.15),
    "fresh": ("baseline loop, fresh copy", "others/stackrun", 10.0),
    "plan": ("plan --parallelism 1", "others/stackrun", 2.0),
}


def clear_logs(logs_dir: Path) -> None:
    """Remove the stack logs of earlier runs: what the logs hold after the timed run is its own.

    (A deploy starts each stack's log afresh, but a stack it leaves alone keeps an old one.)
    """
    for path in logs_dir.glob("*.log"):
        path.unlink()


def resource_seconds(logs_dir: Path) -> dict[str, dict[str, int]]:
    """Stack -> resource address -> elapsed seconds of its apply, from the stack logs."""
    found: dict[str, dict[str, int]] = {}
    for path in sorted(logs_dir.glob("*.log")):
        applies: dict[str, int] = {}
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            match = _COMPLETE.match(line.strip())
            if match:
                hours, minutes = int(match["h"] or 0), int(match["m"] or 0)
                seconds = hours * 3600 + minutes * 60 + int(match["s"])
                applies[match["address"]] = max(seconds, applies.get(match["address"], 0))
        found[path.stem] = applies
    return found


def provider_floor(upstream: dict[str, tuple[str, ...]], applies: dict[str, dict[str, int]]) -> int:
    """Longest path over the stack graph, each stack weighing its longest resource apply."""
    finish: dict[str, int] = {}
    for name in upstream:  # the environment's order: upstream stacks come first
        longest = max(applies.get(name, {}).values(), default=0)
        start = max((finish[before] for before in upstream[name] if before in finish), default=0)
        finish[name] = start + longest
    return max(finish.values(), default=0)


def fresh_copy(root: Path, destination: Path) -> Path:
    """A clone of the scratch repository (or a copy without .stackrun/ and .terraform/)."""
    if (root / ".git").exists():
        subprocess.run(["git", "clone", "--quiet", str(root), str(destination)], check=True)
    else:
        shutil.copytree(root, destination, ignore=shutil.ignore_patterns(".stackrun", ".terraform"))
    return destination


def stack_statuses(report_file: Path) -> dict[str, str]:
    """Stack -> status, from a run report written by `--report-file`."""
    document = json.loads(report_file.read_text())
    return {stack["name"]: stack["status"] for stack in document["stacks"]}


def row(case: str, others_s: float, stackrun_s: float) -> dict:
    """One line of the final table, the target checked."""
    compared_to, meaning, target = CASES[case]
    if meaning == "others/stackrun":
        ratio = others_s / stackrun_s
        met, target_text = ratio >= target, f"at least {target:g}x"
    else:
        ratio = stackrun_s / others_s if others_s else float("inf")
        met, target_text = ratio <= target, f"at most {target:g}x"
    return {
        "case": case,
        "compared_to": compared_to,
        "others_s": others_s,
        "stackrun_s": stackrun_s,
        "ratio": ratio,
        "ratio_is": meaning,
        "target": target_text,
        "met": met,
    }


def print_rows(rows: list[dict]) -> None:
    print("\n| case | compared to | its (s) | stackrun (s) | ratio | target | met |")
    print("|---|---|---:|---:|---:|---|---|")
    for line in rows:
        ratio = line["ratio_is"].replace("others", "its")
        print(
            f"| {line['case']} | {line['compared_to']} | {line['others_s']:.1f} | "
            f"{line['stackrun_s']:.1f} | {line['ratio']:.2f}x ({ratio}) | {line['target']} | "
            f"{'met' if line['met'] else 'not met'} |"
        )
