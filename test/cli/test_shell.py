"""``nameko_like shell``: scripts on stdin, the interactive prompt, errors, timeouts.

Calling real services from the shell is in test_run.py; these need no broker
except the RPC timeout tests marked ``integration``.
"""

import importlib.util
import os
import pty
import select
import signal
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
    assert ("n.rpc calls time out after 30 s (--timeout or SHELL_RPC_TIMEOUT to change; "
            "0 waits forever)") in output


@pytest.mark.parametrize("args, said", [
    (["--timeout", "2.5"], "n.rpc calls time out after 2.5 s"),
    (["--define", "SHELL_RPC_TIMEOUT=7"], "n.rpc calls time out after 7 s"),
    (["--timeout", "0"], "n.rpc calls wait for their reply forever (--timeout sets a limit)"),
])
def test_banner_states_the_rpc_timeout(cli, args, said):
    status, output = _interact(cli, [*MEMORY, "--interface", "python", *args], [b"\x04"])
    assert status == 0, output
    assert said in output


@pytest.mark.parametrize("args, message", [
    (["--timeout", "-1"], "argument --timeout: '-1': give 0 (wait forever) or more seconds"),
    (["--timeout", "soon"], "argument --timeout: 'soon' is not a number of seconds"),
])
def test_bad_timeout_option(cli, args, message):
    result = cli("shell", *MEMORY, *args, input="print(1)\n")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == f"nameko_like shell: error: {message}"


def test_bad_timeout_config(cli):
    result = cli("shell", *MEMORY, "--define", "SHELL_RPC_TIMEOUT=soon", input="print(1)\n")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "nameko_like shell: error: SHELL_RPC_TIMEOUT must be a number of seconds (0 waits "
        "forever), got 'soon'"]


_STOPPED_SERVICE = """
    from nameko_like.rpc import rpc


    class Greeter:
        name = "greeter"

        @rpc
        def hello(self, who):
            return f"hello {who}"
"""

_CALL_AND_TIME = """
    import time
    from nameko_like.exceptions import RpcTimeout
    started = time.monotonic()
    try:
        n.rpc.greeter.hello("Ann")
    except RpcTimeout as exc:
        print("RpcTimeout after", round(time.monotonic() - started, 1))
"""


@pytest.fixture
def stopped_service_queue(cli, amqp_uri):
    """The greeter's RPC queue exists on the broker, but no greeter runs."""
    cli.write("greeter.py", _STOPPED_SERVICE)
    run = cli.start("run", "greeter", "--broker", amqp_uri)
    run.wait_for_log("running services greeter")
    run.signal(signal.SIGTERM)
    assert run.wait() == 0, run.log


@pytest.mark.integration
@pytest.mark.usefixtures("stopped_service_queue")
@pytest.mark.parametrize("args, seconds", [
    (["--timeout", "1"], 1.0),
    (["--define", "SHELL_RPC_TIMEOUT=1.5"], 1.5),
])
def test_call_to_a_stopped_service_times_out(cli, amqp_uri, args, seconds):
    started = time.monotonic()
    result = cli("shell", "--broker", amqp_uri, *args, input=_CALL_AND_TIME)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"RpcTimeout after {seconds}\n"
    assert time.monotonic() - started < seconds + 10


@pytest.mark.skipif(importlib.util.find_spec("IPython") is not None,
                    reason="IPython is installed")
def test_requested_interface_not_installed(cli):
    status, output = _interact(cli, [*MEMORY, "--interface", "ipython"], [])
    assert status == 1
    assert ("nameko_like shell: error: ipython is not installed (pip install ipython); "
            "use --interface python for the plain prompt") in output
