"""Importing nameko_like binds nothing that eventlet's monkey patch must replace.

Scripts may import nameko_like and only then monkey patch (in ``__main__``,
as ``docs/examples/run_in_code.py`` does). A module that did ``from time
import sleep`` before the patch keeps the blocking sleep: kombu's virtual
transport does, and imported early it blocked the hub while polling
``memory://`` (the script hung). So the public modules must not import it.
"""

import json
import subprocess
import sys

PUBLIC_MODULES = [
    "nameko_like.rpc", "nameko_like.events", "nameko_like.messaging", "nameko_like.timer",
    "nameko_like.web.handlers", "nameko_like.web.websocket", "nameko_like.standalone.rpc",
    "nameko_like.standalone.events", "nameko_like.containers", "nameko_like.runners",
    "nameko_like.extensions", "nameko_like.dependency_providers", "nameko_like.exceptions",
    "nameko_like.serialization", "nameko_like.contextdata", "nameko_like.utils",
]

SCRIPT = f"""
import importlib, json, sys
for name in {PUBLIC_MODULES!r}:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("kombu.transport.virtual"))))
"""


def test_public_modules_do_not_import_kombus_virtual_transport():
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", SCRIPT],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


# What an RPC/events service that uses none of them must not pay for at
# start-up (time and resident memory): each is imported by the feature that
# needs it (an @http entrypoint, METRICS_ADDRESS, TRACING, @validated, a
# cron timer, a config file).
OPTIONAL_HEAVY = ["werkzeug", "pydantic", "prometheus_client", "opentelemetry", "croniter",
                  "nameko_like.web", "nameko_like.metrics", "nameko_like.contracts.signature"]

CORE_SCRIPT = f"""
import importlib, json, sys
from nameko_like._eventlet import eventlet
eventlet.monkey_patch()
for name in ["nameko_like.rpc", "nameko_like.events", "nameko_like.containers",
             "nameko_like.runners", "nameko_like.timer", "nameko_like.standalone.rpc",
             "nameko_like.cli.main", "nameko_like.cli.serving"]:
    importlib.import_module(name)
heavy = {OPTIONAL_HEAVY!r}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy or
                        any(m == h or m.startswith(h + ".") for h in heavy))))
"""


def test_core_and_run_command_do_not_import_optional_heavy_modules():
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", CORE_SCRIPT],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_config_loader_imports_yaml_only_to_read_a_file(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("AMQP_URI: memory://\n")
    script = ("import sys\nfrom nameko_like import config_loader\n"
              "print('yaml' in sys.modules)\n"
              f"loaded = config_loader.load_config({str(config)!r})\n"
              "print(loaded['AMQP_URI'], 'yaml' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", script],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "memory://", "True"]
