"""Deploy benchmark: `stackrun deploy` against the plain terraform loop, on the local emulator.

    python benchmarks/deploy_bench.py [--env dev] [--runs 3] [--cold-runs 1]   (or nox -s bench)

Both deploy the same stacks (live/<env>, copied into two environments of a scratch copy of the
repository, each in its own emulated account) on one emulator started for the run:

    baseline   the loop the project started from: for each stack folder in order,
               `terraform init` then `terraform apply -auto-approve`, each stack given the
               outputs of the earlier ones (`terraform output -json`) as TF_VAR_* values. The
               folders are the ones stackrun renders (same modules, inputs, backend, provider).
    contender  `stackrun deploy <env> --local --no-serve --parallelism <CPUs>` (stacks with no
               dependency path between them side by side, as the cold floor assumes).

Cases (wall time median of the runs, and the peak resident memory of the largest process),
each printed as a ratio against what it is compared to in the same run, then one table:
    cold       every stack deployed into an empty account (its state backend exists: the
               baseline loop cannot create one, so both are bootstrapped beforehand, untimed;
               so is the local Lambda runtime's venv, a once-per-machine install). Also
               against a floor, the provider's own waits: per stack the longest single
               resource apply of stackrun's run (terraform's apply_complete elapsed_seconds,
               read from the stack logs: bench_floors.py), summed along the longest path of
               the stack graph: a lower bound no runner can beat
    repeat     nothing changed
    fresh      nothing changed, from a fresh copy of the scratch repository at another path
               (no .stackrun/, no .terraform/): the loop inits and applies every stack in
               folders never initialised; stackrun should skip every stack on the fingerprint
               records in the backend (checked in its --report-file: "every stack skipped")
    plan       no-change `stackrun plan bench-tool --local --parallelism 1` (one stack after
               another) against the default parallelism (the CPUs)
    input      one input of the last stack changed
    lambda     one function's source changed (stackrun deploy builds the zip within its
               time; the baseline's build happens before its timed loop, in its favour). Also
               against a floor: the changed stack's own `terraform apply -auto-approve` of
               another such change (zip built before), in its rendered folder of the baseline
               environment, with the loop's environment and TF_VAR_* values
    localapi   the local API under 1 and 8 concurrent clients, against itself with one
               execution environment and no cache (benchmarks/localapi_bench.py, its own
               emulator; a few minutes)

Then, per function: zip size, build time cold (--force) and cached, and the handler's import
time in a fresh interpreter of the local python3.12 runtime (boto3 + awslambdaric, as on
Lambda) with only the function's code on its path: the zip extracted, as Lambda extracts it
to /var/task, imported without writing bytecode (-B; /var/task is read-only).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import bench_floors

REPO_ROOT = Path(__file__).resolve().parents[1]
ACCOUNTS = {"bench-base": "901000000001", "bench-tool": "901000000002"}
CASE_NAMES = ("cold", "repeat", "fresh", "plan", "input", "lambda", "localapi")


# ---- measuring -------------------------------------------------------------------------------


def measure(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    """(seconds, peak RSS in MB of the largest process) of one command, run via `_measured`."""
    seconds, peak_mb, _ = measure_cpu(command, env, cwd)
    return seconds, peak_mb


def measure_cpu(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, float]:
    """measure's figures, and the CPU seconds (user + system) of the command and of every
    process it started and waited for (terraform, its provider)."""
    wrapper = [sys.executable, __file__, "_measured", "--", *command]
    started = time.perf_counter()
    result = subprocess.run(wrapper, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(
            f"benchmark command failed: {' '.join(command)}\n{result.stdout[-4000:]}\n"
            f"{result.stderr[-4000:]}"
        )
    peak_kb, cpu_s = result.stdout.strip().splitlines()[-1].split()
    return seconds, int(peak_kb) // 1024, float(cpu_s)


def _measured(command: list[str]) -> None:
    """Run `command`; print the peak RSS (KB) of the largest descendant waited for, and the
    CPU seconds of all of them."""
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as sink:
        code = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, check=False)
        if code.returncode != 0:
            # rerun visibly is too costly; say what failed, with the end of its output
            sink.seek(0)
            print(sink.read()[-3000:], file=sys.stderr)
            print(f"exit {code.returncode}: {' '.join(command)}", file=sys.stderr)
            sys.exit(code.returncode)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(usage.ru_maxrss, usage.ru_utime + usage.ru_stime)


# ---- the baseline loop -------------------------------------------------------------------------


def _outputs(folder: Path, env: dict[str, str]) -> dict:
    """A stack's outputs (`terraform output -json`), as values."""
    document = subprocess.run(
        ["terraform", "output", "-json"],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {k: v["value"] for k, v in json.loads(document).items()}


def _baseline(env_name: str) -> None:
    """The plain loop over the rendered stack folders (run inside `_measured`)."""
    from stackrun.config import load_environment
    from stackrun.terraform.render import dependency_variables

    root = Path(os.environ["STACKRUN_ROOT"])
    environment = load_environment(root, env_name)
    values: dict[str, dict] = {}
    base_env = dict(os.environ)
    for stack in environment.stacks:
        folder = _stack_folder(root, env_name, stack.name)
        env = {**base_env, **dependency_variables(stack, values)}
        for args in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
            subprocess.run(
                ["terraform", *args], cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL
            )
        values[stack.name] = _outputs(folder, env)


def _stack_folder(root: Path, env_name: str, stack_name: str) -> Path:
    """A stack's rendered folder on the local target (where the loop runs terraform)."""
    from stackrun.paths import environment_dir, stack_workdir

    return stack_workdir(environment_dir(root, "local", env_name), stack_name)


def _stack_variables(env: dict[str, str], root: Path, stack_name: str) -> dict[str, str]:
    """The TF_VAR_* values the loop gives one stack of bench-base: its upstream outputs."""
    from stackrun.config import load_environment
    from stackrun.terraform.render import dependency_variables

    stack = load_environment(root, "bench-base").stack(stack_name)
    values = {
        name: _outputs(_stack_folder(root, "bench-base", name), env) for name in stack.upstream
    }
    return dependency_variables(stack, values)


# ---- the scratch repository ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_repo(work: Path, env: str, port: int) -> Path:
    from stackrun.config.defaults import DEFAULTS_FOLDER

    root = work / "repo"
    for folder in ("modules", "lambdas"):
        shutil.copytree(
            REPO_ROOT / folder,
            root / folder,
            ignore=shutil.ignore_patterns(
                ".terraform*", "*.egg-info", "__pycache__", ".pytest_cache", "tests"
            ),
        )
    # the repository's provider lock file (the one .terraform* file git keeps): stacks init with it
    shutil.copy2(REPO_ROOT / "modules" / ".terraform.lock.hcl", root / "modules")
    (root / "live").mkdir()
    project = (REPO_ROOT / "live" / "project.toml").read_text()
    (root / "live" / "project.toml").write_text(project.replace("port = 4566", f"port = {port}"))
    shutil.copytree(REPO_ROOT / "live" / DEFAULTS_FOLDER, root / "live" / DEFAULTS_FOLDER)
    for name, account in ACCOUNTS.items():
        shutil.copytree(REPO_ROOT / "live" / env, root / "live" / name)
        env_file = root / "live" / name / "env.toml"
        text = env_file.read_text()
        original = next(
            line.split('"')[1] for line in text.splitlines() if line.startswith("account_id")
        )
        # no promotion: the copies deploy their own zips (promote_from names a live/ sibling)
        kept = [line for line in text.splitlines() if not line.startswith("promote_from")]
        text = "\n".join(kept) + "\n"
        env_file.write_text(text.replace(original, account).replace("protected = true", ""))
    return root


def _render(root: Path, env_name: str, environ: dict[str, str]) -> None:
    """Render the stack folders of the baseline environment (what Terragrunt would generate)."""
    code = (
        "import sys; from pathlib import Path; "
        "from stackrun.config import load_environment; from stackrun.aws.target import Target; "
        "from stackrun.terraform.workspace import Workspace; "
        "from stackrun.deploy.pipeline import ensure_artifacts; "
        "import os; e = load_environment(Path(os.environ['STACKRUN_ROOT']), sys.argv[1]); "
        "t = Target(endpoint=sys.argv[2], ca_bundle=Path(sys.argv[3])); "
        "w = Workspace(e, t); ensure_artifacts(w); [w.render(s) for s in e.stacks]"
    )
    endpoint = f"https://127.0.0.1:{environ['STACKRUN_LOCAL_PORT']}"
    ca_bundle = Path(environ["STACKRUN_EMULATOR_DIR"]) / "tls" / "ca.pem"
    subprocess.run(
        [sys.executable, "-c", code, env_name, endpoint, str(ca_bundle)], env=environ, check=True
    )


# ---- the cases ----------------------------------------------------------------------------------


class Bench:
    """One scratch repository on one emulator: the two environments, the commands, the figures."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="stackrun-bench-"))
        self.port = _free_port()
        self.root = make_repo(self.work, args.env, self.port)
        self.environ = dict(os.environ)
        self.environ.update(
            STACKRUN_ROOT=str(self.root),
            STACKRUN_EMULATOR_DIR=str(self.work / "emulator"),
            STACKRUN_LOCAL_PORT=str(self.port),
            STACKRUN_RUNTIME_DIR=str(self.work / "runtimes"),
            PYTHONUNBUFFERED="1",
        )
        self.stackrun = [sys.executable, "-m", "stackrun"]
        self.report_file = self.work / "run-report.json"
        self.baseline_command = [sys.executable, __file__, "_baseline", "bench-base"]
        # side by side where the stack graph allows, as the cold floor's longest path assumes
        self.contender_command = [
            *self.stackrun,
            *("deploy", "bench-tool", "--local", "--no-serve"),
            *("--parallelism", str(os.cpu_count() or 1)),
            *("--report-file", str(self.report_file)),
        ]
        self.selected = set(args.cases.split(","))
        self.results: dict[str, dict] = {}
        self.rows: list[dict] = []
        self.tf_env: dict[str, str] = {}

    def run(self, *command: str) -> None:
        subprocess.run(
            [*self.stackrun, *command],
            env=self.environ,
            cwd=self.root,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def terraform_env(self, root: Path) -> dict[str, str]:
        """What stackrun gives terraform for the local target: endpoints, CA, credentials."""
        code = (
            "import json, os, sys; from pathlib import Path; "
            "from stackrun.config import load_environment; from stackrun.aws.target import Target; "
            "from stackrun.terraform.workspace import Workspace; "
            "e = load_environment(Path(os.environ['STACKRUN_ROOT']), 'bench-base'); "
            "t = Target(endpoint=sys.argv[1], ca_bundle=Path(sys.argv[2])); "
            "print(json.dumps(Workspace(e, t).base_env))"
        )
        endpoint = f"https://127.0.0.1:{self.port}"
        ca_bundle = str(self.work / "emulator" / "tls" / "ca.pem")
        out = subprocess.run(
            [sys.executable, "-c", code, endpoint, ca_bundle],
            env={**self.environ, "STACKRUN_ROOT": str(root)},
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return {**json.loads(out), "STACKRUN_ROOT": str(root)}

    def setup(self) -> None:
        print(f"scratch repository {self.root}, emulator on port {self.port}", flush=True)
        self.run("emulator", "start")
        for name in ACCOUNTS:
            self.run("bootstrap", name, "--local")
        # Machine setup, untimed like the backends: the local Lambda runtime (a venv with
        # awslambdaric, created once per machine) that runs the migrations after an apply.
        from stackrun.local.api.functions import runtime_python

        runtime_python("python3.12", self.work / "runtimes")
        _render(self.root, "bench-base", self.environ)
        self.tf_env = self.terraform_env(self.root)

    def record(self, name: str, base: list, tool: list, **extra: object) -> dict:
        """Keep a case's medians (and peaks), print them, add its row to the final table."""
        figures = {
            "baseline_s": statistics.median(s for s, _ in base),
            "contender_s": statistics.median(s for s, _ in tool),
            "baseline_peak_mb": max(m for _, m in base),
            "contender_peak_mb": max(m for _, m in tool),
            "runs": len(tool),
            **extra,
        }
        self.results[name] = figures
        self.add_row(name, figures["baseline_s"], figures["contender_s"])
        return figures

    def add_row(self, case: str, others_s: float, stackrun_s: float) -> None:
        line = bench_floors.row(case, others_s, stackrun_s)
        self.rows.append(line)
        print(
            f"{case:<13} {line['compared_to']} {others_s:7.1f}s  stackrun {stackrun_s:6.1f}s  "
            f"ratio {line['ratio']:5.2f}x ({line['ratio_is']}, target {line['target']})",
            flush=True,
        )

    def case(self, name: str, runs: int, before=None, after=None) -> None:
        """The baseline loop and stackrun deploy, `runs` times each, in turn."""
        if name not in self.selected:
            if name == "cold":  # the other cases start from a deployed environment
                measure(self.baseline_command, self.tf_env, self.root)
                measure(self.contender_command, self.environ, self.root)
            return
        base, tool = [], []
        for index in range(runs):
            if before:
                before(index)
            base.append(measure(self.baseline_command, self.tf_env, self.root))
            tool.append(measure(self.contender_command, self.environ, self.root))
            if after and index < runs - 1:
                after(index)
        self.record(name, base, tool)

    # -- cold, and its floor: the provider's own waits

    def cold(self) -> None:
        if "cold" not in self.selected:
            self.case("cold", 1)
            return
        from stackrun.config import load_environment
        from stackrun.paths import environment_dir

        logs = environment_dir(self.root, "local", "bench-tool") / "logs"
        environment = load_environment(self.root, "bench-tool")
        upstream = {stack.name: stack.upstream for stack in environment.stacks}
        base, tool, floors, waits = [], [], [], []
        for index in range(self.args.cold_runs):
            if index:
                self.destroy_both()
            base.append(measure(self.baseline_command, self.tf_env, self.root))
            bench_floors.clear_logs(logs)
            tool.append(measure(self.contender_command, self.environ, self.root))
            applies = bench_floors.resource_seconds(logs)
            floors.append(bench_floors.provider_floor(upstream, applies))
            waits.append(applies)
        figures = self.record("cold", base, tool, floor_s=statistics.median(floors))
        figures["floor_resource_seconds"] = waits
        self.add_row("cold floor", figures["floor_s"], figures["contender_s"])

    def destroy_both(self) -> None:
        for name in ACCOUNTS:
            self.run("destroy", name, "--local", "--yes", "--lift-deletion-protection")
        _render(self.root, "bench-base", self.environ)

    # -- a repeat deploy from a fresh copy of the repository

    def fresh(self) -> None:
        if "fresh" not in self.selected:
            return
        base, tool, all_skipped = [], [], []
        for index in range(self.args.runs):
            copy = bench_floors.fresh_copy(self.root, self.work / f"fresh-base-{index}")
            environ = {**self.environ, "STACKRUN_ROOT": str(copy)}
            _render(copy, "bench-base", environ)  # never initialised: no .terraform
            base.append(measure(self.baseline_command, self.terraform_env(copy), copy))
            copy = bench_floors.fresh_copy(self.root, self.work / f"fresh-tool-{index}")
            self.report_file.unlink(missing_ok=True)
            tool.append(
                measure(self.contender_command, {**self.environ, "STACKRUN_ROOT": str(copy)}, copy)
            )
            statuses = bench_floors.stack_statuses(self.report_file)
            all_skipped.append(bool(statuses) and set(statuses.values()) == {"skipped"})
        self.record("fresh", base, tool, every_stack_skipped=all(all_skipped))
        print(f"fresh: every stack skipped: {'yes' if all(all_skipped) else 'no'}", flush=True)

    # -- no-change plan, one stack after another against the default parallelism

    def plan(self) -> None:
        if "plan" not in self.selected:
            return
        plan = [*self.stackrun, "plan", "bench-tool", "--local"]
        sequential, parallel, cpu = [], [], []
        for _ in range(self.args.runs):
            sequential.append(measure([*plan, "--parallelism", "1"], self.environ, self.root))
            emulator_before = self.emulator_cpu_seconds()
            seconds, peak_mb, plan_cpu = measure_cpu(plan, self.environ, self.root)
            parallel.append((seconds, peak_mb))
            cpu.append(plan_cpu + self.emulator_cpu_seconds() - emulator_before)
        cpus = os.cpu_count() or 1
        figures = {
            "sequential_s": statistics.median(s for s, _ in sequential),
            "parallel_s": statistics.median(s for s, _ in parallel),
            "parallelism": cpus,
            "runs": self.args.runs,
            # stackrun, terraform, the provider and the emulator, in the side-by-side run
            "cpu_s": statistics.median(cpu),
        }
        # No schedule on `cpus` cores finishes that CPU work in less than cpu_s / cpus: the
        # most any plan side by side can gain over this sequential wall time
        figures["ceiling"] = figures["sequential_s"] / (figures["cpu_s"] / cpus)
        self.results["plan"] = figures
        self.add_row("plan", figures["sequential_s"], figures["parallel_s"])
        print(
            f"plan: {figures['cpu_s']:.1f} CPU-seconds per side-by-side run (stackrun, terraform, "
            f"the provider, the emulator); on {cpus} CPUs none runs in less than "
            f"{figures['cpu_s'] / cpus:.1f}s: at most {figures['ceiling']:.2f}x over one stack "
            "after another",
            flush=True,
        )

    # -- input and lambda, and the lambda floor: the changed stack's own terraform apply

    def change_input(self, index: int) -> None:
        last = sorted(p for p in (self.root / "live" / "bench-base").iterdir() if p.is_dir())
        for name in ACCOUNTS:
            path = self.root / "live" / name / last[-1].name / "stack.toml"
            text = path.read_text()
            key = "access_log_retention_days = "
            old = next(line for line in text.splitlines() if line.startswith(key))
            days = (30, 60, 90)[index % 3]
            path.write_text(text.replace(old, f"{key}{days}"))
        _render(self.root, "bench-base", self.environ)

    def change_lambda(self, index: int) -> None:
        handler = self.root / "lambdas" / "list_devices" / "src" / "list_devices" / "handler.py"
        handler.write_text(handler.read_text() + f"\n# bench change {index}\n")
        _render(self.root, "bench-base", self.environ)  # the baseline's build step

    def lambda_floor(self) -> None:
        """stackrun's lambda deploy against the changed stack's own `terraform apply`."""
        changed = [
            name
            for name, status in bench_floors.stack_statuses(self.report_file).items()
            if status == "applied"
        ]
        if len(changed) != 1:
            sys.exit(f"lambda floor: expected one applied stack in the last run, got {changed}")
        folder = _stack_folder(self.root, "bench-base", changed[0])
        floors = []
        for index in range(self.args.runs):
            self.change_lambda(1000 + index)  # a new change; the zip is built here, untimed
            env = {**self.tf_env, **_stack_variables(self.tf_env, self.root, changed[0])}
            apply = ["terraform", "apply", "-auto-approve", "-input=false"]
            floors.append(measure(apply, env, folder))
        figures = self.results["lambda"]
        figures.update(floor_s=statistics.median(s for s, _ in floors), floor_stack=changed[0])
        self.add_row("lambda floor", figures["floor_s"], figures["contender_s"])

    def all_cases(self) -> None:
        self.setup()
        self.cold()
        self.case("repeat", self.args.runs)
        self.fresh()
        self.plan()
        self.case("input", self.args.runs, before=self.change_input)
        self.case("lambda", self.args.runs, before=self.change_lambda)
        if "lambda" in self.selected:
            self.lambda_floor()
        self.results["functions"] = _function_figures(self.root, self.environ, self.work)
        self.results["table"] = self.rows

    def emulator_cpu_seconds(self) -> float:
        """CPU seconds (user + system) the bench's emulator has used so far."""
        pid_file = Path(self.environ["STACKRUN_EMULATOR_DIR"]) / "emulator.pid"
        pid = json.loads(pid_file.read_text())["pid"]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        # also the PostgreSQL servers behind the emulated RDS instances, which every copy shares
        subprocess.run(
            [*self.stackrun, "emulator", "stop"], env=self.environ, cwd=self.root, check=False
        )
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)


def run_cases(args: argparse.Namespace) -> dict:
    bench = Bench(args)
    try:
        bench.all_cases()
    finally:
        bench.stop()
    return bench.results


def _function_figures(root: Path, environ: dict[str, str], work: Path) -> dict:
    from stackrun.local.api.functions import runtime_python

    python = runtime_python("python3.12", work / "runtimes")
    dist = root / "dist" / "lambdas"
    figures = {}
    stackrun = [sys.executable, "-m", "stackrun"]
    started = time.perf_counter()
    subprocess.run([*stackrun, "build"], env=environ, cwd=root, check=True, capture_output=True)
    cached_all = time.perf_counter() - started
    for manifest_path in sorted(dist.glob("*.json")):
        manifest = json.loads(manifest_path.read_text())
        name = manifest["name"]
        started = time.perf_counter()
        subprocess.run(
            [*stackrun, "build", name, "--force"],
            env=environ,
            cwd=root,
            check=True,
            capture_output=True,
        )
        cold = time.perf_counter() - started
        module = manifest["handler"].rsplit(".", 1)[0]
        # Lambda extracts the zip to a read-only /var/task: import from the extracted files,
        # with no bytecode written (-B), in a fresh interpreter each time.
        task_root = work / "task" / name
        shutil.rmtree(task_root, ignore_errors=True)
        with zipfile.ZipFile(dist / f"{name}.zip") as archive:
            archive.extractall(task_root)
        code = (
            "import sys, time; sys.path.insert(0, sys.argv[1]); t = time.perf_counter(); "
            "import importlib; importlib.import_module(sys.argv[2]); "
            "print(time.perf_counter() - t)"
        )
        imports = []
        for _ in range(5):
            out = subprocess.run(
                [str(python), "-I", "-B", "-c", code, str(task_root), module],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            imports.append(float(out.strip()))
        figures[name] = {
            "zip_mb": manifest["size"] / 1e6,
            "build_cold_s": cold,
            "import_ms": statistics.median(imports) * 1000,
        }
        line = figures[name]
        print(
            f"{name:<16} zip {line['zip_mb']:4.1f} MB  build cold {line['build_cold_s']:5.1f}s  "
            f"import {line['import_ms']:5.0f} ms",
            flush=True,
        )
    figures["_cached_build_all_s"] = cached_all
    print(f"cached build of all functions: {cached_all:.2f}s", flush=True)
    return figures


def print_table(results: dict) -> None:
    bench_floors.print_rows(results["table"])
    functions = results["functions"]
    print("\n| function | zip (MB) | build cold (s) | handler import (ms) |")
    print("|---|---:|---:|---:|")
    for name, f in functions.items():
        if not name.startswith("_"):
            print(
                f"| {name} | {f['zip_mb']:.1f} | {f['build_cold_s']:.1f} | {f['import_ms']:.0f} |"
            )
    print(f"\ncached build of all functions: {functions['_cached_build_all_s']:.2f} s")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_measured":
        _measured(sys.argv[3:])
        return
    if len(sys.argv) > 2 and sys.argv[1] == "_baseline":
        _baseline(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="dev", help="the live/ environment to copy (dev)")
    parser.add_argument("--runs", type=int, default=3, help="runs per warm case (3)")
    parser.add_argument("--cold-runs", type=int, default=1, help="runs of the cold case (1)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the scratch repository")
    parser.add_argument(
        "--cases",
        default=",".join(CASE_NAMES),
        help=f"comma-separated subset of {','.join(CASE_NAMES)} (default: all)",
    )
    parser.add_argument(
        "--requests", type=int, default=25, help="localapi: requests per client (25)"
    )
    parser.add_argument(
        "--localapi-port", type=int, default=0, help="localapi: the emulator's port (a free one)"
    )
    args = parser.parse_args()
    selected = set(args.cases.split(","))
    if selected - set(CASE_NAMES):
        parser.error(
            f"--cases: unknown {','.join(sorted(selected - set(CASE_NAMES)))}; "
            f"expected a subset of {','.join(CASE_NAMES)}"
        )
    results: dict = {}
    if selected - {"localapi"}:
        results = run_cases(args)
        print_table(results)
    if "localapi" in selected:
        sys.path.insert(0, str(Path(__file__).parent))
        import localapi_bench

        results["localapi"] = localapi_bench.run(args.requests, args.localapi_port)
        localapi_bench.print_table(results["localapi"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
