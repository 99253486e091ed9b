"""Fixtures for running Nameko community extensions on nameko_like through the alias.

The extensions, and the real Nameko they require, live in their own
virtualenv, ``.venv-alias`` at the repo root, which ``ensure_alias_env.sh``
builds on first use (from ``alias-requirements.txt``) and reuses after: the
real Nameko must not enter ``.venv``, where its pytest plugin would load into
this very test session. Code runs there as subprocesses (fixtures
``alias_python``, ``alias_run``, ``run_alias_python``). If the package index
cannot be reached, the tests that need the env are skipped; any other
failure to build it fails them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from amqp.exceptions import NotFound
from kombu import Connection

HERE = Path(__file__).resolve().parent
SERVICES_DIR = HERE / "alias_services"
ENSURE_SCRIPT = HERE / "ensure_alias_env.sh"
LAUNCHER = SERVICES_DIR / "die_with_parent.py"
ALIAS_ENV_VAR = "NAMEKO_LIKE_ALIAS_NAMEKO"

#: Seconds the env may take to build (about 20 s here; pip may retry).
INSTALL_TIMEOUT = 600
#: ensure_alias_env.sh's exit status when the package index is out of reach.
EXIT_NO_INDEX = 3
#: Seconds a ``nameko_like run`` has to start consuming.
START_TIMEOUT = 30
#: Seconds a service has to stop after SIGTERM before it is killed.
STOP_TIMEOUT = 15
#: Seconds a one-off script or inner pytest run may take.
SCRIPT_TIMEOUT = 90


@pytest.fixture(scope="session")
def alias_python() -> str:
    """Path of the python of ``.venv-alias``; builds the env if needed."""
    try:
        done = subprocess.run(
            ["bash", str(ENSURE_SCRIPT)], capture_output=True, text=True,
            timeout=INSTALL_TIMEOUT, check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"building .venv-alias took over {INSTALL_TIMEOUT}s ({ENSURE_SCRIPT.name})")
    last_words = " | ".join(done.stderr.strip().splitlines()[-5:])
    if done.returncode == EXIT_NO_INDEX:
        pytest.skip(f"the package index cannot be reached to build .venv-alias: {last_words}")
    if done.returncode != 0:
        pytest.fail(f"{ENSURE_SCRIPT.name} exited {done.returncode}:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def alias_env(alias: bool = True, **extra: str) -> dict[str, str]:
    """Environment for ``.venv-alias`` subprocesses: nothing of this test's venv.

    ``alias`` sets (or removes) ``NAMEKO_LIKE_ALIAS_NAMEKO``.
    """
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", ALIAS_ENV_VAR)}
    if alias:
        env[ALIAS_ENV_VAR] = "1"
    # eventlet announces its deprecation on every import
    env["PYTHONWARNINGS"] = "ignore"
    env["PYTHONUNBUFFERED"] = "1"
    env["ALIAS_PARENT_PID"] = str(os.getpid())
    env.update(extra)
    return env


@pytest.fixture
def run_alias_python(alias_python: str) -> Callable[..., subprocess.CompletedProcess]:
    """``run(*args, alias=True, **env)``: run ``.venv-alias``'s python with ``args``.

    Runs in ``alias_services/`` through the die-with-parent launcher when the
    args start with ``-m``; returns the completed process (text output).
    """

    def run(*args: str, alias: bool = True, **env: str) -> subprocess.CompletedProcess:
        launcher = [str(LAUNCHER)] if args[:1] == ("-m",) else []
        command = [alias_python, *launcher, *args]
        try:
            return subprocess.run(
                command, capture_output=True, text=True, cwd=SERVICES_DIR,
                env=alias_env(alias, **env), timeout=SCRIPT_TIMEOUT, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"{args} ran over {SCRIPT_TIMEOUT}s; output so far: {exc.stdout!r} "
                        f"{exc.stderr!r}")

    return run


class AliasRun:
    """One ``nameko_like run`` subprocess in ``.venv-alias``, alias on."""

    def __init__(self, python: str, services: list[str], config: dict, workdir: Path) -> None:
        config_path = workdir / "alias-config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / "alias-run.log"
        self._log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [python, str(LAUNCHER), "-m", "nameko_like", "run", "--config", str(config_path),
             *services],
            cwd=SERVICES_DIR, env=alias_env(), stdin=subprocess.DEVNULL,
            stdout=self._log_file, stderr=subprocess.STDOUT,
        )

    @property
    def running(self) -> bool:
        """Whether the process has not exited."""
        return self.process.poll() is None

    def log(self) -> str:
        """What the process printed so far."""
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM (a graceful stop), SIGKILL if it lingers; returns the exit status."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        self._log_file.close()
        return self.process.returncode

    def wait_for_queues(self, amqp_uri: str, *queue_names: str) -> None:
        """Wait until every queue has a consumer; fail with the log if it exits first."""
        deadline = time.monotonic() + START_TIMEOUT
        for queue_name in queue_names:
            while _consumer_count(amqp_uri, queue_name) < 1:
                if not self.running:
                    pytest.fail(f"nameko_like run exited ({self.process.returncode}) "
                                f"before {queue_name} had a consumer:\n{self.log()}")
                if time.monotonic() >= deadline:
                    pytest.fail(f"{queue_name} has no consumer after {START_TIMEOUT}s:\n"
                                f"{self.log()}")
                time.sleep(0.2)


def _consumer_count(amqp_uri: str, queue_name: str) -> int:
    # A passive declare answers from the queue itself, without the
    # management API's statistics delay; 0 while the queue does not exist.
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        try:
            return int(channel.queue_declare(queue=queue_name, passive=True).consumer_count)
        except NotFound:
            return 0
        finally:
            if channel.is_open:
                channel.close()


@pytest.fixture
def alias_run(alias_python: str, rabbit_config: dict,
              tmp_path: Path) -> Iterator[Callable[..., AliasRun]]:
    """``start(services, **config)``: ``nameko_like run`` services of ``alias_services/``.

    ``services`` are ``module:Class`` paths; the config is the test's vhost
    plus ``config``. Every run is stopped at teardown, before the vhost goes.
    """
    started: list[AliasRun] = []

    def start(services: list[str], **config: Any) -> AliasRun:
        run = AliasRun(alias_python, services,
                       {"AMQP_URI": rabbit_config["AMQP_URI"], **config}, tmp_path)
        started.append(run)
        return run

    yield start
    for run in started:
        run.stop()
