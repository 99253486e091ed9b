"""``nameko_like run --reload``: a real supervisor and child processes, a real
broker, real edits of the service module."""

import os
import re
import signal
import time

import pytest

VERSION = """
    from nameko_like.rpc import rpc


    class Greeter:
        name = "greeter"

        @rpc
        def version(self):
            return "{version}"
"""

RUNNING = "running services greeter"
CHILD = r"reload: started the services \(process (\d+)\)"


def _children(run):
    return [int(pid) for pid in re.findall(CHILD, run.log)]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for_count(run, text, count, timeout=30):
    deadline = time.monotonic() + timeout
    while run.log.count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} not seen {count} times:\n{run.log}"
        assert run.process.poll() is None, run.log
        time.sleep(0.05)


def _call(cli, amqp_uri):
    result = cli("shell", "--broker", amqp_uri, "--timeout", "10",
                 input="print(n.rpc.greeter.version())")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _edit(cli, version):
    path = cli.write("greeter.py", VERSION.format(version=version))
    # a later mtime even on coarse-grained file systems
    future = time.time() + 1
    os.utime(path, (future, future))


@pytest.mark.integration
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_edit_restarts_the_services_and_a_signal_ends_both(cli, amqp_uri, stop_signal):
    cli.write("greeter.py", VERSION.format(version="v1"))
    run = cli.start("run", "greeter", "--broker", amqp_uri, "--reload")
    _wait_for_count(run, RUNNING, 1)
    assert _call(cli, amqp_uri) == "v1"

    edited = time.monotonic()
    _edit(cli, "v2")
    _wait_for_count(run, RUNNING, 2)
    assert _call(cli, amqp_uri) == "v2"
    reload_seconds = time.monotonic() - edited
    assert "reload: greeter.py changed; restarting the services" in run.log
    first, second = _children(run)
    assert first != second and not _alive(first)
    assert reload_seconds < 15, reload_seconds
    print(f"edit to new answer: {reload_seconds:.2f} s")

    run.signal(stop_signal)
    assert run.wait() == 0, run.log
    assert not _alive(second)
    assert f"{signal.Signals(stop_signal).name} received: stopping gracefully" in run.log
    assert "Traceback" not in run.log


@pytest.mark.integration
def test_a_broken_edit_waits_for_the_fix(cli, amqp_uri):
    cli.write("greeter.py", VERSION.format(version="v1"))
    run = cli.start("run", "greeter", "--broker", amqp_uri, "--reload")
    _wait_for_count(run, RUNNING, 1)

    path = cli.write("greeter.py", "def broken(:\n")
    os.utime(path, (time.time() + 1,) * 2)
    run.wait_for_log("reload: the services exited with status 1; restarting at the next change")
    assert "importing module 'greeter' failed: SyntaxError" in run.log
    assert run.process.poll() is None  # the supervisor waits for the fix

    _edit(cli, "v3")
    _wait_for_count(run, RUNNING, 2)
    assert _call(cli, amqp_uri) == "v3"
    run.signal(signal.SIGTERM)
    assert run.wait() == 0, run.log
    assert not any(_alive(pid) for pid in _children(run))


@pytest.mark.integration
def test_files_outside_the_watched_directories_are_ignored(cli, amqp_uri):
    cli.write("greeter.py", VERSION.format(version="v1"))
    cli.write("watched/__init__.py", "")
    run = cli.start("run", "greeter", "--broker", amqp_uri, "--reload", "--reload-dir", "watched")
    _wait_for_count(run, RUNNING, 1)
    _edit(cli, "v2")  # not under watched/
    time.sleep(2)
    assert run.log.count(RUNNING) == 1
    cli.write("watched/notes.py", "x = 1\n")
    _wait_for_count(run, RUNNING, 2)
    assert _call(cli, amqp_uri) == "v2"
    run.signal(signal.SIGTERM)
    assert run.wait() == 0, run.log


def test_reload_dir_must_exist(cli):
    cli.write("greeter.py", VERSION.format(version="v1"))
    result = cli("run", "greeter", "--broker", "memory://", "--reload", "--reload-dir", "nope")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "nameko_like run: error: --reload-dir 'nope' is not a directory"]
