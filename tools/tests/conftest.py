"""Shared fixtures: a throwaway repository layout (live/ + modules/) built per test."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

NETWORKISH_MODULE = """
variable "name" {
  type        = string
  description = "Name prefix"
}
variable "cidr" {
  type    = string
  default = "10.0.0.0/16"
}
output "vpc_id" { value = "vpc-1" }
output "subnet_ids" { value = ["a", "b"] }
output "secret" {
  value     = "s"
  sensitive = true
}
"""

CONSUMER_MODULE = """
variable "vpc_id" { type = string }
variable "subnet_ids" { type = list(string) }
variable "size" {
  type    = number
  default = 1
}
output "id" { value = "x" }
"""


class RepoBuilder:
    """Writes project.toml, env.toml, stack.toml files and modules into a temp repo."""

    def __init__(self, root: Path):
        self.root = root
        self.write(
            "live/project.toml",
            """
            [project]
            name = "fleet"
            default_region = "eu-west-1"
            """,
        )
        self.module("networkish", NETWORKISH_MODULE)
        self.module("consumer", CONSUMER_MODULE)

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    def module(self, name: str, text: str) -> None:
        self.write(f"modules/{name}/main.tf", text)

    def env(self, name: str, account: str = "111111111111", extra: str = "") -> None:
        self.write(
            f"live/{name}/env.toml",
            f'account_id = "{account}"\ndeploy_role = "deploy"\n{textwrap.dedent(extra)}',
        )

    def stack(self, env: str, folder: str, text: str) -> None:
        self.write(f"live/{env}/{folder}/stack.toml", text)

    def functions_stack(self, env: str, functions: dict[str, str], lambdas: str = "") -> None:
        """live/<env>/030_api deploying `functions` (name -> its settings, TOML lines) through
        a module with a `functions` input, each a package of lambdas/; `lambdas`: more lines of
        its [lambdas] table."""
        self.env(env)
        self.module("api", 'variable "functions" {\n  type = any\n}\n')
        tables = ""
        for name, settings in functions.items():
            self.write(f"lambdas/{name}/pyproject.toml", "[project]\nname = 'x'\n")
            tables += f"[inputs.functions.{name}]\n{textwrap.dedent(settings)}"
        self.stack(
            env,
            "030_api",
            'module = "api"\n[lambdas]\ninput = "functions"\n' + textwrap.dedent(lambdas) + tables,
        )

    def standard(self) -> None:
        """dev with 010_net (networkish) and 020_app (consumer of 010's outputs)."""
        self.env("dev")
        self.stack(
            "dev",
            "010_net",
            """
            module = "networkish"
            [inputs]
            name = "fleet-dev"
            """,
        )
        self.stack(
            "dev",
            "020_app",
            """
            module = "consumer"
            [inputs]
            size = 2
            [dependencies]
            vpc_id = "010_net.vpc_id"
            subnet_ids = "010_net.subnet_ids"
            """,
        )


@pytest.fixture
def repo(tmp_path: Path) -> RepoBuilder:
    return RepoBuilder(tmp_path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest tests first, then the other terraform tests, then the rest, dealt out so
    each xdist worker starts with its share of the long ones: the suite is CPU-bound, and a
    long test started last ends the run alone. (`--dist worksteal` gives worker k the k-th
    contiguous slice of this order, `left // (workers - k)` long; idle workers then take
    pending tests from the end of the others' queues.)"""

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("longest"):
            return 0
        return 1 if item.get_closest_marker("terraform") else 2

    ranked = sorted(items, key=rank)  # stable: the file order within each rank
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    sizes, left = [], len(ranked)
    for k in range(workers):  # xdist's own split: each worker a share of what is left
        sizes.append(left // (workers - k))
        left -= sizes[-1]
    slices: list[list[pytest.Item]] = [[] for _ in range(workers)]
    turn = 0
    for item in ranked:
        while len(slices[turn % workers]) >= sizes[turn % workers]:
            turn += 1
        slices[turn % workers].append(item)
        turn += 1
    items[:] = [item for share in slices for item in share]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """One local AWS emulator for the test session: (state dir, port). Stopped at the end."""
    from stackrun.local.emulator import ensure_running, stop

    state_dir = tmp_path_factory.mktemp("emulator")
    # Local Lambda runtimes (a venv with awslambdaric per Python version) shared by the tests.
    os.environ.setdefault("STACKRUN_RUNTIME_DIR", str(tmp_path_factory.mktemp("runtimes")))
    port = _free_port()
    ensure_running(state_dir, port=port)
    yield state_dir, port
    stop(state_dir)


@pytest.fixture
def local_repo(tmp_path, emulator):
    from emulated_repo import LocalRepo
    from stackrun.local.api import process as api_process
    from stackrun.local.postgres import stop_all

    state_dir, port = emulator
    repo = LocalRepo(tmp_path / "repo", state_dir, port)
    yield repo
    api_process.stop_all(repo.root)
    stop_all(repo.root / ".stackrun")
