"""`stackrun graph <env>`: the stacks of the repository's dev, in each format, sorted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stackrun.cli import run

REPO_ROOT = Path(__file__).resolve().parents[2]


def _graph(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert run(["graph", *args]) == 0
    return capsys.readouterr().out


def test_text_lists_each_stack_with_what_it_consumes_from_which(capsys):
    lines = _graph(capsys, "dev").splitlines()

    assert lines[0] == "dev: 5 stacks"
    api = lines.index("030_api  (module lambda-api)")
    assert lines[api + 1 :] == [
        "  <- 010_network: lambda_security_group_id, private_subnet_ids",
        "  <- 020_postgres: address, db_name, port, role_secret_arns",
        "  <- 025_identity: jwt_authorizer",
        "  <- 027_migrations: after",
    ]


def test_dot_has_a_node_per_stack_and_a_labelled_edge_per_upstream(capsys):
    lines = _graph(capsys, "dev", "--format", "dot").splitlines()

    assert lines[0] == 'digraph "dev" {' and lines[-1] == "}"
    assert '  "025_identity" [label="025_identity\\nmodule: identity"];' in lines
    assert '  "025_identity" -> "030_api" [label="jwt_authorizer"];' in lines
    assert '  "027_migrations" -> "030_api" [label="after", style=dashed];' in lines


def test_the_output_does_not_depend_on_set_order():
    """Two processes with different string hashing (so different set orders) print the same,
    in every format."""
    script = (
        "from stackrun.cli import run\n"
        "for output_format in ('text', 'dot', 'mermaid'):\n"
        "    run(['graph', 'stage', '--format', output_format])\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed, "STACKRUN_ROOT": str(REPO_ROOT)},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    output = outputs.pop()
    assert "030_api  (module lambda-api)" in output and "flowchart LR" in output


def test_an_unknown_format_is_refused(capsys):
    with pytest.raises(SystemExit):
        run(["graph", "dev", "--format", "svg"])
    assert "invalid choice: 'svg'" in capsys.readouterr().err


def test_a_reader_that_stops_early_gets_no_traceback():
    """`stackrun graph dev | head -1`: the closed pipe ends stackrun quietly (exit 141, as a
    shell reports SIGPIPE), not with a BrokenPipeError traceback."""
    process = subprocess.Popen(
        [sys.executable, "-m", "stackrun", "graph", "dev", "--format", "dot"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "STACKRUN_ROOT": str(REPO_ROOT)},
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    errors = process.stderr.read()
    assert process.wait(timeout=60) == 141
    assert b"Traceback" not in errors and b"BrokenPipeError" not in errors
