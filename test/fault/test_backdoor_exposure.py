"""The backdoor stays on loopback unless forced (issue 12.7).

A backdoor is a Python prompt inside the services: on ``0.0.0.0`` anyone on
the network could run code there. ``nameko_like run`` refuses such an
address with a one-line error naming the fix, and listens on it only when
``NAMEKO_LIKE_BACKDOOR_ALLOW_REMOTE=1`` says so, with a warning.
"""

import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from nameko_like.testing.utils import find_free_port

pytestmark = pytest.mark.fault

TICKER = """
    from nameko_like.timer import timer


    class Ticker:
        name = "ticker"

        @timer(interval=60)
        def tick(self):
            pass
"""
ALLOW = "NAMEKO_LIKE_BACKDOOR_ALLOW_REMOTE"


def run_command(tmp_path, address):
    (tmp_path / "ticker.py").write_text(textwrap.dedent(TICKER))
    return [sys.executable, "-m", "nameko_like", "run", "ticker", "--broker", "memory://",
            "--backdoor-port", address]


def listening(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_backdoor_on_all_interfaces_is_refused(tmp_path):
    port = find_free_port()
    env = {key: value for key, value in os.environ.items() if key != ALLOW}
    started = time.monotonic()
    result = subprocess.run(run_command(tmp_path, f"0.0.0.0:{port}"), cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, result.stderr
    assert f"refusing to open the backdoor on 0.0.0.0:{port}: not a loopback address" in errors[0]
    assert f"{ALLOW}=1" in errors[0]
    assert time.monotonic() - started < 30
    assert not listening(port)


def test_backdoor_on_all_interfaces_when_forced(tmp_path):
    port = find_free_port()
    env = dict(os.environ, **{ALLOW: "1"})
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(run_command(tmp_path, f"0.0.0.0:{port}"), cwd=tmp_path,
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "running services ticker" not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        output = log_path.read_text()
        assert f"the backdoor listens on 0.0.0.0:{port}, beyond this machine ({ALLOW}=1)" \
            in output
        assert listening(port)
    finally:
        process.terminate()
        process.wait(timeout=30)
