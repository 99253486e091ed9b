"""The tracing example of docs/operations.rst, run as a script on RabbitMQ."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nameko_like.testing.utils import find_free_port

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "docs" / "examples"


def json_objects(text):
    """Every JSON object printed one after the other in ``text``."""
    decoder, objects, position = json.JSONDecoder(), [], 0
    while (start := text.find("{", position)) != -1:
        value, position = decoder.raw_decode(text, start)
        objects.append(value)
    return objects


@pytest.mark.integration
def test_tracing_example_prints_one_trace(rabbit_config):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "AMQP_URI": rabbit_config["AMQP_URI"],
           "WEB_SERVER_ADDRESS": f"127.0.0.1:{find_free_port()}"}
    done = subprocess.run([sys.executable, "tracing_shop.py"], cwd=EXAMPLES_DIR, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    *spans, answer = json_objects(done.stdout)
    assert answer == {"item": 4, "stock": 40}
    by_name = {span["name"]: span for span in spans}
    assert set(by_name) == {"GET /items/<int:item_id>", "check the basket",
                            "publish nameko-rpc:stock.level",
                            "process nameko-rpc:stock.level:rpc-stock"}
    assert len({span["context"]["trace_id"] for span in spans}) == 1
    parents = {name: span["parent_id"] for name, span in by_name.items()}
    ids = {name: span["context"]["span_id"] for name, span in by_name.items()}
    assert parents["check the basket"] == ids["GET /items/<int:item_id>"]
    assert parents["publish nameko-rpc:stock.level"] == ids["check the basket"]
    assert parents["process nameko-rpc:stock.level:rpc-stock"] == \
        ids["publish nameko-rpc:stock.level"]
