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
