"""Helpers for the CLI tests: the real command, run as a subprocess.

``cli`` runs ``python -m nameko_like`` in the test's ``tmp_path`` (where
service modules are written), bounds every wait with a timeout, and kills
whatever it started at teardown. Every output it collects is checked for
eventlet's deprecation notice, which the CLI must never show.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Upper bound on any single wait for a CLI process.
TIMEOUT = 30

_DEPRECATION_NOTICES = ("EventletDeprecationWarning", "Eventlet is deprecated")


def assert_no_deprecation_notice(output: str) -> None:
    """Fail if eventlet's deprecation notice leaked into ``output``."""
    for notice in _DEPRECATION_NOTICES:
        assert notice not in output, output


class Background:
    """A CLI process left running; its stderr goes to a file we can poll."""

    def __init__(self, args: list[str], cwd: Path, log_path: Path,
                 input_path: Path | None = None) -> None:
        self.log_path = log_path
        # Both outlive this method: the log until stop(), stdin until Popen has it.
        self._log_file = open(log_path, "w")  # noqa: SIM115
        stdin = open(input_path) if input_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nameko_like", *args], cwd=cwd,
                stdin=stdin, stdout=self._log_file, stderr=subprocess.STDOUT,
            )
        finally:
            if input_path:
                stdin.close()

    @property
    def log(self) -> str:
        """Everything the process has logged so far."""
        return self.log_path.read_text()

    def wait_for_log(self, pattern: str, timeout: float = TIMEOUT) -> re.Match:
        """Wait until ``pattern`` (a regex) appears in the log; return the match."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.log)
            if match:
                return match
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        match = re.search(pattern, self.log)
        assert match, f"{pattern!r} not logged (exit status {self.process.poll()}):\n{self.log}"
        return match

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process."""
        self.process.send_signal(signum)

    def wait(self, timeout: float = TIMEOUT) -> int:
        """Wait for the process to end; return its exit status."""
        status = self.process.wait(timeout=timeout)
        self._log_file.close()
        assert_no_deprecation_notice(self.log)
        return status

    def kill(self) -> None:
        """Kill the process if it still runs (teardown)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=TIMEOUT)
        self._log_file.close()


class Cli:
    """Runs ``python -m nameko_like`` in one directory."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self._started: list[Background] = []

    def write(self, name: str, source: str) -> Path:
        """Write a file (a service module, a config) into the working directory."""
        path = self.cwd / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return path

    def __call__(self, *args: str, input: str | None = None,
                 timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
        """Run a command to its end and return its result (text output).

        ``input`` (dedented) is its stdin.
        """
        result = subprocess.run(
            [sys.executable, "-m", "nameko_like", *args], cwd=self.cwd,
            input=textwrap.dedent(input) if input is not None else "",
            capture_output=True, text=True, timeout=timeout,
        )
        assert_no_deprecation_notice(result.stdout + result.stderr)
        return result

    def start(self, *args: str, input: str | None = None) -> Background:
        """Start a command in the background (killed at teardown if still running).

        Its stdout and stderr both go to its log; ``input`` is its stdin.
        """
        number = len(self._started)
        input_path = None
        if input is not None:
            input_path = self.write(f"background-{number}.input", input)
        process = Background(list(args), self.cwd, self.cwd / f"background-{number}.log",
                             input_path)
        self._started.append(process)
        return process

    def cleanup(self) -> None:
        """Kill every background process still running."""
        for process in self._started:
            process.kill()


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    """A :class:`Cli` working in ``tmp_path``."""
    runner = Cli(tmp_path)
    try:
        yield runner
    finally:
        runner.cleanup()


_SERVICES_SOURCE = """
    import logging

    from nameko_like._eventlet import eventlet
    from nameko_like.rpc import RpcProxy, rpc

    log = logging.getLogger("services")


    class Greeter:
        name = "greeter"

        @rpc
        def hello(self, who):
            return f"hello {who}"

        @rpc
        def slow(self, seconds):
            log.info("slow call started")
            eventlet.sleep(seconds)
            return "slow done"


    class Gateway:
        name = "gateway"
        greeter = RpcProxy("greeter")

        @rpc
        def greet(self, who):
            return self.greeter.hello(who).upper()
"""


@pytest.fixture
def services_module(cli: Cli) -> str:
    """Name of a module (written to the working directory) with two services.

    ``greeter`` has ``hello(who)`` and ``slow(seconds)`` (which logs
    "slow call started"); ``gateway.greet(who)`` calls ``greeter.hello``.
    """
    cli.write("services.py", _SERVICES_SOURCE)
    return "services"
