"""Deploy benchmark: `stackrun deploy` against the plain terraform loop, on the local emulator.

    python benchmarks/deploy_bench.py [--env dev] [--runs 3] [--cold-runs 1]   (or nox -s bench)

Both deploy the same stacks (live/<env>, copied into two environments of a scratch copy of the
repository, each in its own emulated account) on one emulator started for the run:

    baseline   the loop the project started from: for each stack folder in order,
               `terraform init` then `terraform apply -auto-approve`, each stack given the
               outputs of the earlier ones (`terraform output -json`) as TF_VAR_* values. The
               folders are the ones stackrun renders (same modules, inputs, backend, provider).
    contender  `stackrun deploy <env> --local --no-serve`.

Cases (wall time median of the runs, and the peak resident memory of the largest process):
    cold       every stack deployed into an empty account (its state backend exists: the
               baseline loop cannot create one, so both are bootstrapped beforehand, untimed;
               so is the local Lambda runtime's venv, a once-per-machine install)
    repeat     nothing changed
    input      one input of the last stack changed
    lambda     one function's source changed (stackrun deploy builds the zip within its
               time; the baseline's build happens before its timed loop, in its favour)
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

REPO_ROOT = Path(__file__).resolve().parents[1]
ACCOUNTS = {"bench-base": "901000000001", "bench-tool": "901000000002"}


# ---- measuring -------------------------------------------------------------------------------


def measure(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    """(seconds, peak RSS in MB of the largest process) of one command, run via `_measured`."""
    wrapper = [sys.executable, __file__, "_measured", "--", *command]
    started = time.perf_counter()
    result = subprocess.run(wrapper, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(
            f"benchmark command failed: {' '.join(command)}\n{result.stdout[-4000:]}\n"
            f"{result.stderr[-4000:]}"
        )
    peak_kb = int(result.stdout.strip().splitlines()[-1])
    return seconds, peak_kb // 1024


def _measured(command: list[str]) -> None:
    """Run `command`; print the peak RSS (KB) of the largest descendant waited for."""
    with open(os.devnull, "w") as sink:
        code = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, check=False)
    if code.returncode != 0:
        # rerun visibly is too costly; say what failed
        print(f"exit {code.returncode}: {' '.join(command)}", file=sys.stderr)
        sys.exit(code.returncode)
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


# ---- the baseline loop -------------------------------------------------------------------------


def _baseline(env_name: str) -> None:
    """The plain loop over the rendered stack folders (run inside `_measured`)."""
    from stackrun.config import load_environment
    from stackrun.terraform.render import dependency_variables

    root = Path(os.environ["STACKRUN_ROOT"])
    environment = load_environment(root, env_name)
    stacks_dir = root / ".stackrun" / "local" / env_name / "stacks"
    values: dict[str, dict] = {}
    base_env = dict(os.environ)
    for stack in environment.stacks:
        folder = stacks_dir / stack.name
        env = {**base_env, **dependency_variables(stack, values)}
        for args in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
            subprocess.run(
                ["terraform", *args], cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL
            )
        document = subprocess.run(
            ["terraform", "output", "-json"],
            cwd=folder,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        values[stack.name] = {k: v["value"] for k, v in json.loads(document).items()}


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


def run_cases(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="stackrun-bench-"))
    port = _free_port()
    root = make_repo(work, args.env, port)
    environ = dict(os.environ)
    environ.update(
        STACKRUN_ROOT=str(root),
        STACKRUN_EMULATOR_DIR=str(work / "emulator"),
        STACKRUN_LOCAL_PORT=str(port),
        STACKRUN_RUNTIME_DIR=str(work / "runtimes"),
        PYTHONUNBUFFERED="1",
    )
    stackrun = [sys.executable, "-m", "stackrun"]

    def run(*command: str) -> None:
        subprocess.run(
            [*stackrun, *command], env=environ, cwd=root, check=True, stdout=subprocess.DEVNULL
        )

    def terraform_env() -> dict[str, str]:
        """What stackrun gives terraform for the local target: endpoints, CA, credentials."""
        code = (
            "import json, os, sys; from pathlib import Path; "
            "from stackrun.config import load_environment; from stackrun.aws.target import Target; "
            "from stackrun.terraform.workspace import Workspace; "
            "e = load_environment(Path(os.environ['STACKRUN_ROOT']), 'bench-base'); "
            "t = Target(endpoint=sys.argv[1], ca_bundle=Path(sys.argv[2])); "
            "print(json.dumps(Workspace(e, t).base_env))"
        )
        endpoint = f"https://127.0.0.1:{port}"
        ca_bundle = str(work / "emulator" / "tls" / "ca.pem")
        out = subprocess.run(
            [sys.executable, "-c", code, endpoint, ca_bundle],
            env=environ,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return {**json.loads(out), "STACKRUN_ROOT": str(root)}

    baseline_command = [sys.executable, __file__, "_baseline", "bench-base"]
    contender_command = [*stackrun, "deploy", "bench-tool", "--local", "--no-serve"]
    results: dict[str, dict] = {}
    try:
        print(f"scratch repository {root}, emulator on port {port}", flush=True)
        run("emulator", "start")
        for name in ACCOUNTS:
            run("bootstrap", name, "--local")
        # Machine setup, untimed like the backends: the local Lambda runtime (a venv with
        # awslambdaric, created once per machine) that runs the migrations after an apply.
        from stackrun.local.api.functions import runtime_python

        runtime_python("python3.12", work / "runtimes")
        _render(root, "bench-base", environ)
        tf_env = terraform_env()

        selected = set(args.cases.split(","))

        def case(name: str, runs: int, before=None, after=None) -> None:
            if name not in selected:
                if name == "cold":  # the other cases start from a deployed environment
                    measure(baseline_command, tf_env, root)
                    measure(contender_command, environ, root)
                return
            base, tool = [], []
            for index in range(runs):
                if before:
                    before(index)
                base.append(measure(baseline_command, tf_env, root))
                tool.append(measure(contender_command, environ, root))
                if after and index < runs - 1:
                    after(index)
            results[name] = {
                "baseline_s": statistics.median(s for s, _ in base),
                "contender_s": statistics.median(s for s, _ in tool),
                "baseline_peak_mb": max(m for _, m in base),
                "contender_peak_mb": max(m for _, m in tool),
                "runs": runs,
            }
            line = results[name]
            print(
                f"{name:<8} baseline {line['baseline_s']:7.1f}s  stackrun "
                f"{line['contender_s']:6.1f}s  ratio "
                f"{line['baseline_s'] / line['contender_s']:5.1f}x",
                flush=True,
            )

        def destroy_both(_: int) -> None:
            for name in ACCOUNTS:
                run("destroy", name, "--local", "--yes", "--lift-deletion-protection")
            _render(root, "bench-base", environ)

        case("cold", args.cold_runs, after=destroy_both)
        case("repeat", args.runs)

        last = sorted(p for p in (root / "live" / "bench-base").iterdir() if p.is_dir())[-1].name

        def change_input(index: int) -> None:
            for name in ACCOUNTS:
                path = root / "live" / name / last / "stack.toml"
                text = path.read_text()
                key = "access_log_retention_days = "
                old = next(line for line in text.splitlines() if line.startswith(key))
                days = (30, 60, 90)[index % 3]
                path.write_text(text.replace(old, f"{key}{days}"))
            _render(root, "bench-base", environ)

        case("input", args.runs, before=change_input)

        def change_lambda(index: int) -> None:
            handler = root / "lambdas" / "list_devices" / "src" / "list_devices" / "handler.py"
            handler.write_text(handler.read_text() + f"\n# bench change {index}\n")
            _render(root, "bench-base", environ)  # the baseline's build step

        case("lambda", args.runs, before=change_lambda)
        results["functions"] = _function_figures(root, environ, work)
    finally:
        subprocess.run([*stackrun, "emulator", "stop"], env=environ, cwd=root, check=False)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return results


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
    print(
        "\n| case | baseline loop (s) | stackrun deploy (s) | ratio | peak MB (loop / stackrun) |"
    )
    print("|---|---:|---:|---:|---:|")
    for name in ("cold", "repeat", "input", "lambda"):
        if name not in results:
            continue
        r = results[name]
        print(
            f"| {name} (median of {r['runs']}) | {r['baseline_s']:.1f} | {r['contender_s']:.1f} "
            f"| {r['baseline_s'] / r['contender_s']:.1f}x | "
            f"{r['baseline_peak_mb']} / {r['contender_peak_mb']} |"
        )
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
        default="cold,repeat,input,lambda,localapi",
        help="comma-separated subset of cold,repeat,input,lambda,localapi (default: all)",
    )
    parser.add_argument(
        "--requests", type=int, default=25, help="localapi: requests per client (25)"
    )
    parser.add_argument(
        "--localapi-port", type=int, default=0, help="localapi: the emulator's port (a free one)"
    )
    args = parser.parse_args()
    selected = set(args.cases.split(","))
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
