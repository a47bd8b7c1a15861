"""The lazily created tracer: no X-Ray SDK import at module import, no-op when unavailable."""

from __future__ import annotations

import subprocess
import sys

import aws_lambda_powertools

from fleet_common.observability import LazyTracer


def test_importing_the_api_does_not_import_the_heavy_modules():
    # (powertools itself imports the bare `botocore` package, which is cheap.)
    heavy = ("aws_xray_sdk", "boto3", "botocore.session", "pg8000", "fastjsonschema")
    code = (
        "import sys, fleet_common.api, fleet_common.db, fleet_common.pagination;"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_decorated_functions_run_untraced_outside_lambda():
    tracer = LazyTracer(service="t")

    @tracer.capture_lambda_handler
    def handler(event, context):
        return {"event": event}

    @tracer.capture_method
    def method(x, *, y):
        return x + y

    assert handler({"a": 1}, None) == {"event": {"a": 1}}
    assert method(1, y=2) == 3
    tracer.put_annotation("k", "v")  # disabled tracer: accepted, nothing sent
    tracer.put_metadata("k", {"v": 1})


def test_a_tracer_that_fails_to_load_is_a_no_op(monkeypatch, fleet_logs):
    def broken(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'botocore'")

    monkeypatch.setattr(aws_lambda_powertools, "Tracer", broken)
    tracer = LazyTracer(service="t")

    @tracer.capture_lambda_handler
    def handler(event, context):
        return "ok"

    assert handler({}, None) == "ok"
    assert tracer.real is None
    tracer.put_annotation("k", "v")
    assert "X-Ray tracer unavailable" in fleet_logs.text()
