"""The alias itself, in this repo's .venv (no Nameko installed): no broker, no index.

Each check runs in a subprocess with ``NAMEKO_LIKE_ALIAS_NAMEKO=1``: the
alias changes ``sys.modules`` and ``sys.meta_path`` for good, which this test
session must not inherit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import weakref
from typing import Any

import pytest

from nameko_like.nameko_alias import ENV_VAR
from nameko_like.testing.services import dummy
from nameko_like.worker_context import WorkerContext

SCRIPT_TIMEOUT = 60


def run_python(code: str, alias: bool = True) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter of this venv, the alias on or off."""
    env = {key: value for key, value in os.environ.items() if key != ENV_VAR}
    if alias:
        env[ENV_VAR] = "1"
    env["PYTHONWARNINGS"] = "ignore"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=SCRIPT_TIMEOUT, check=False)


def run_json(code: str, alias: bool = True) -> Any:
    """Run ``code``, which prints one JSON document last; return it."""
    done = run_python(code, alias)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_nameko_modules_are_nameko_like_modules() -> None:
    """Same module objects, so classes, functions and isinstance checks are shared."""
    result = run_json("""
import json, sys
import nameko_like
import nameko
from nameko.rpc import rpc, RpcProxy
from nameko.extensions import DependencyProvider
from nameko.testing.services import entrypoint_hook
import nameko_like.rpc, nameko_like.extensions, nameko_like.testing.services

class Mine(DependencyProvider):
    pass

print(json.dumps({
    "package": nameko is nameko_like,
    "rpc": rpc is nameko_like.rpc.rpc and RpcProxy is nameko_like.rpc.RpcProxy,
    "subclass": issubclass(Mine, nameko_like.extensions.DependencyProvider),
    "modules": sys.modules["nameko.testing.services"] is nameko_like.testing.services,
    "hook": entrypoint_hook is nameko_like.testing.services.entrypoint_hook,
    "spec_names": [nameko_like.rpc.__spec__.name, nameko_like.testing.services.__spec__.name],
}))
""")
    assert result == {
        "package": True, "rpc": True, "subclass": True, "modules": True, "hook": True,
        # each module keeps its own spec: the alias's is put back after loading
        "spec_names": ["nameko_like.rpc", "nameko_like.testing.services"],
    }


def test_startup_message_once_at_info_without_a_real_nameko() -> None:
    """No Nameko is installed here, so nothing is hidden: INFO, logged once."""
    done = run_python("""
import logging
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
import nameko_like
import nameko.rpc
import nameko.events
import nameko.standalone.rpc
""")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if ENV_VAR in line]
    assert lines == [("INFO nameko_like.nameko_alias: NAMEKO_LIKE_ALIAS_NAMEKO=1: "
                      "`import nameko` resolves to nameko_like")]


def test_missing_submodule_names_the_alias() -> None:
    """A Nameko module nameko_like lacks: ModuleNotFoundError naming it and the alias."""
    result = run_json("""
import json
import nameko_like
errors = []
try:
    from nameko.utils.retry import retry
except ImportError as exc:
    errors.append([type(exc).__name__, exc.name, str(exc)])
try:
    from nameko.utils import retry
except ImportError as exc:
    errors.append([type(exc).__name__, exc.name, str(exc)])
print(json.dumps(errors))
""")
    (kind, name, message), (_, _, from_package) = result
    assert (kind, name) == ("ModuleNotFoundError", "nameko.utils.retry")
    assert message.startswith("No module named 'nameko.utils.retry': "
                              "NAMEKO_LIKE_ALIAS_NAMEKO=1 makes `import nameko...` resolve "
                              "to nameko_like, which has no 'nameko_like.utils.retry'")
    # `from package import submodule` asks the package, which is nameko_like's,
    # and Python words that error itself (docs/nameko_alias.rst says so)
    assert from_package.startswith("cannot import name 'retry' from 'nameko_like.utils'")


def test_finder_ahead_of_ours_gets_no_second_copy() -> None:
    """A finder inserted before ours that searches ``__path__`` itself (as pytest's
    assertion rewriter does) still gets nameko_like's own modules, not copies."""
    result = run_json("""
import importlib.machinery, json, sys
import nameko_like

class SearchesPaths:
    # Loads any nameko... module it can find on the file system itself.
    def find_spec(self, name, path=None, target=None):
        if not name.startswith("nameko."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return None
        return spec

sys.meta_path.insert(0, SearchesPaths())
import nameko.testing.services, nameko.rpc
import nameko_like.testing.services, nameko_like.rpc
print(json.dumps([nameko.testing.services is nameko_like.testing.services,
                  nameko.rpc is nameko_like.rpc]))
""")
    assert result == [True, True]


def test_nameko_pytest_plugin_is_an_inert_stand_in() -> None:
    """``nameko.testing.pytest`` registers nothing, answers look-ups from our plugin,
    and leaves ``nameko_like.testing.pytest`` alone."""
    result = run_json("""
import json, sys
import nameko_like
import importlib
stand_in = importlib.import_module("nameko.testing.pytest")  # as pytest loads it
from nameko.testing.pytest import container_factory
import nameko_like.testing.pytest as ours

print(json.dumps({
    "distinct": stand_in is not ours,
    "hooks": [name for name in dir(stand_in) if name.startswith("pytest_")],
    "fixtures": [name for name in dir(stand_in) if "factory" in name],
    "delegates": container_factory is ours.container_factory,
    "ours_intact": sys.modules["nameko_like.testing"].pytest is ours,
}))
""")
    assert result == {"distinct": True, "hooks": [], "fixtures": [], "delegates": True,
                      "ours_intact": True}


def test_off_unless_the_env_var_is_1() -> None:
    """Without the variable nothing is aliased (no Nameko is installed in this venv)."""
    done = run_python("import nameko_like\nimport nameko\n", alias=False)
    assert "ModuleNotFoundError: No module named 'nameko'" in done.stderr


def test_worker_contexts_are_weak_referenceable(container_factory: Any) -> None:
    """Extensions keep per-worker state in WeakKeyDictionaries, as with Nameko."""

    class Service:
        name = "service"

        @dummy
        def method(self) -> None:
            """Nothing."""

    container = container_factory(Service, {"AMQP_URI": "memory://"})
    (entrypoint,) = container.entrypoints
    context = WorkerContext(container, Service(), entrypoint)
    states: weakref.WeakKeyDictionary[WorkerContext, str] = weakref.WeakKeyDictionary()
    states[context] = "session"
    assert states[context] == "session"
    del context
    assert not states


@pytest.mark.parametrize("value", ["0", "", "true"])
def test_only_1_turns_it_on(value: str) -> None:
    """Only the documented value turns the alias on."""
    env = {key: val for key, val in os.environ.items() if key != ENV_VAR}
    env[ENV_VAR] = value
    done = subprocess.run(
        [sys.executable, "-c", "import sys, nameko_like; print('nameko' in sys.modules)"],
        capture_output=True, text=True, env=env, timeout=SCRIPT_TIMEOUT, check=False)
    assert done.stdout.strip() == "False", done.stderr
