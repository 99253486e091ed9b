"""Tracing where the OpenTelemetry SDK is not set up, or OpenTelemetry is absent.

Each case runs tracing_script.py in a fresh process (the SDK's tracer
provider is process-wide, and "not installed" needs a process that never
imported it), against the real broker.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).with_name("tracing_script.py")


def run_script(mode: str, config: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(SCRIPT), mode, config["AMQP_URI"]],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_without_the_sdk_calls_work_and_trace_context_passes_through(
        rabbit_config: dict[str, Any]) -> None:
    result = run_script("no-sdk", rabbit_config)
    # no TracerProvider was set up: OpenTelemetry's no-op one answered
    assert result["provider"] == "ProxyTracerProvider"
    # two hops on, the worker is still in the caller's trace
    assert result["seen"] == result["sent"]


def test_without_opentelemetry_nothing_imports_it_and_the_key_names_the_extra(
        rabbit_config: dict[str, Any]) -> None:
    result = run_script("not-installed", rabbit_config)
    assert result["answer"] == "pong"
    assert result["imported"] == []
    assert result["error"] == (
        "TRACING is on but opentelemetry-api is not installed: "
        "pip install 'nameko_like[tracing]' (or set TRACING: false)")
