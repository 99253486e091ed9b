"""nameko_like installed without extras must leave unrelated pytest runs alone.

The plugin is loaded by every pytest run in an environment where
nameko_like is installed. This builds such an environment (a fresh
virtualenv with ``pip install <repo> pytest``, no ``[dev]`` or
``[testing]``) once per test session, and runs a tiny unrelated project's
tests in it, then a tiny project that uses nameko_like.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: Seconds building the environment may take.
INSTALL_TIMEOUT = 540


@pytest.fixture(scope="session")
def clean_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The python of a fresh virtualenv with nameko_like (no extras) and pytest."""
    env = tmp_path_factory.mktemp("clean-env") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, timeout=120)
    python = str(env / "bin" / "python")
    try:
        done = subprocess.run(
            [python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "--retries", "1", "--timeout", "30", str(REPO), "pytest"],
            capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip install took over {INSTALL_TIMEOUT}s (is the package index reachable?)")
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1:] or ["no output"]
        if "Could not find a version" in done.stderr or "connection" in done.stderr.lower():
            pytest.skip(f"pip cannot reach the package index: {reason[0]}")
        raise AssertionError(f"pip install failed:\n{done.stdout}\n{done.stderr}")
    return python


def _run(python: str, project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *args],
                          cwd=project, capture_output=True, text=True, timeout=120,
                          check=False)


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def test_extras_are_not_installed(clean_python: str) -> None:
    done = subprocess.run([clean_python, "-c", "import requests"], capture_output=True,
                          check=False)
    assert done.returncode != 0, "the clean environment is not clean: requests is installed"


def test_unrelated_project_is_unaffected(clean_python: str, tmp_path: Path) -> None:
    project = _write(tmp_path / "unrelated", {
        "pytest.ini": "[pytest]\n",
        "test_plain.py": """
            import socket
            import sys
            import threading

            def test_not_monkey_patched():
                assert socket.socket.__module__ == "socket"
                assert threading.Lock.__module__ != "eventlet.green.thread"
                assert "eventlet" not in sys.modules
        """,
    })
    done = _run(clean_python, project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert "PluginImportFailure" not in done.stdout + done.stderr


def test_project_using_nameko_like_is_patched(clean_python: str, tmp_path: Path) -> None:
    project = _write(tmp_path / "user", {
        "conftest.py": "# tests of a nameko_like service\n",
        "test_service.py": """
            import socket

            from nameko_like.testing.services import worker_factory
            from nameko_like.rpc import rpc, RpcProxy

            class Service:
                name = "service"
                other = RpcProxy("other")

                @rpc
                def method(self):
                    return self.other.call()

            def test_patched_and_working():
                assert socket.socket.__module__.startswith("eventlet")
                service = worker_factory(Service)
                service.other.call.return_value = 1
                assert service.method() == 1

            def test_web_fixture_names_the_fix(web_session):
                pass

            def test_rabbit_fixture_names_the_fix(rabbit_manager):
                pass
        """,
    })
    done = _run(clean_python, project)
    output = done.stdout + done.stderr
    assert "PASSED test_service.py::test_patched_and_working" in output, output
    assert "the web_session fixture needs the requests package" in output
    assert "the RabbitMQ fixtures need requests" in output
    assert output.count("pip install 'nameko_like[testing]'") >= 2


def test_switch_turns_patching_off(clean_python: str, tmp_path: Path) -> None:
    project = _write(tmp_path / "switched_off", {
        "pytest.ini": "[pytest]\nnameko_like_monkey_patch = false\n",
        "test_service.py": """
            import socket

            import nameko_like.containers

            def test_not_patched():
                assert socket.socket.__module__ == "socket"
        """,
    })
    done = _run(clean_python, project)
    output = done.stdout + done.stderr
    assert "1 passed" in output, output
    # tests import nameko_like unpatched: the plugin says how to fix that
    assert "nameko_like_monkey_patch = true" in output
