"""``nameko_like shell``: scripts on stdin, the interactive prompt, errors.

Calling real services from the shell is in test_run.py; these need no broker.
"""

import importlib.util
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from nameko_like import __version__

MEMORY = ("--broker", "memory://")


def test_stdin_script_sees_the_helpers(cli):
    result = cli("shell", *MEMORY, "--define", "GREETING=hi", input="""
        print(n.config["GREETING"])
        print(callable(n.dispatch_event), n.rpc is not None)
        print(__name__)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hi", "True True", "__main__"]
    assert result.stderr == ""


def test_script_error_shows_its_traceback_and_fails(cli):
    result = cli("shell", *MEMORY, input="x = 1\nraise ValueError('bad input')\n")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[1] == '  File "<stdin>", line 2, in <module>'
    assert lines[-1] == "ValueError: bad input"


def test_script_exit_status_is_kept(cli):
    result = cli("shell", *MEMORY, input="import sys\nsys.exit(3)\n")
    assert result.returncode == 3


def test_unreachable_broker_is_one_line(cli):
    result = cli("shell", "--broker", "amqp://guest:secret@127.0.0.1:1/", input="print(1)\n")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("nameko_like shell: error: cannot reach the AMQP broker at "
                           "amqp://guest:********@127.0.0.1:1/")
    assert result.stdout == ""


def test_missing_config_file_is_one_line(cli):
    result = cli("shell", "--config", "nope.yaml")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "nameko_like shell: error: nope.yaml: config file not found"]


def _interact(cli, args, lines, prompt=b">>> ", timeout=20):
    """Run the shell on a terminal, typing each of ``lines`` at a prompt.

    Typing only once the prompt shows matters: a line editor setting up the
    terminal may discard what was typed before. Returns (status, output).
    """
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "nameko_like", "shell", *args],
                               cwd=cli.cwd, stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    output = b""
    pending = list(lines)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if pending and output.endswith(prompt):
                os.write(controller, pending.pop(0))
            ready, _, _ = select.select([controller], [], [], 0.1)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the shell has closed the terminal
                break
            if not chunk:
                break
            output += chunk
        return process.wait(timeout=5), output.decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)


def test_interactive_python_prompt(cli):
    # Ctrl-D (\x04) at the prompt ends the shell.
    status, output = _interact(cli, [*MEMORY, "--interface", "python"],
                               [b"print(n.config['AMQP_URI'] * 2)\n", b"\x04"])
    assert status == 0, output
    assert f"nameko_like {__version__} shell on Python" in output
    assert "broker: memory://" in output
    assert "memory://memory://" in output


@pytest.mark.skipif(importlib.util.find_spec("IPython") is not None,
                    reason="IPython is installed")
def test_requested_interface_not_installed(cli):
    status, output = _interact(cli, [*MEMORY, "--interface", "ipython"], [])
    assert status == 1
    assert ("nameko_like shell: error: ipython is not installed (pip install ipython); "
            "use --interface python for the plain prompt") in output
