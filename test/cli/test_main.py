"""The command line as a whole: help, version, argument handling, import hygiene.

No broker needed.
"""

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from nameko_like import __version__
from nameko_like.cli.options import parse_address

COMMAND_NAMES = ["run", "shell", "show-config", "backdoor", "test"]


def test_version(cli):
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"nameko_like {__version__}"


def test_help_lists_every_command(cli):
    result = cli("--help")
    assert result.returncode == 0
    for name in COMMAND_NAMES:
        assert name in result.stdout


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_every_command_has_help_with_examples(cli, name):
    result = cli(name, "--help")
    assert result.returncode == 0
    assert f"usage: nameko_like {name}" in result.stdout
    assert "examples:" in result.stdout
    assert f"nameko_like {name}" in result.stdout.split("examples:")[1]


def test_missing_command_is_a_usage_error(cli):
    result = cli()
    assert result.returncode == 2
    assert "usage: nameko_like" in result.stderr


def test_unknown_argument_is_reported_by_the_command(cli):
    result = cli("show-config", "--nope")
    assert result.returncode == 2
    assert "nameko_like show-config: error: unrecognized arguments: --nope" in result.stderr


def test_console_script_is_the_same_command():
    script = Path(sys.executable).parent / "nameko_like"
    if not script.exists():
        pytest.skip("the package's console script is not installed next to this Python")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0
    assert result.stdout.strip() == f"nameko_like {__version__}"


def test_importing_the_cli_leaves_sockets_and_eventlet_alone():
    # main.py imports every command module before it can monkey-patch: none of
    # them may import what the patch must see first.
    probe = ("import sys, nameko_like.cli.main; "
             "print(sorted(m for m in ('socket', 'eventlet', 'kombu', 'nameko_like.extensions') "
             "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=30)
    assert result.stdout.strip() == "[]", result.stderr


def test_run_monkey_patches_before_importing_services(cli):
    cli.write("patched.py", """
        import socket
        import threading

        from eventlet import patcher

        from nameko_like.timer import timer

        assert patcher.is_monkey_patched("socket"), "socket imported unpatched"
        assert patcher.is_monkey_patched("thread"), "threading imported unpatched"


        class Patched:
            name = "patched"

            @timer(interval=60)
            def tick(self):
                pass
    """)
    result = cli("run", "patched", "--broker", "amqp://guest:guest@127.0.0.1:1/")
    # Importing succeeded; it is the unreachable broker that stops the run.
    assert "cannot reach the AMQP broker" in result.stderr, result.stderr


def test_test_command_passes_arguments_through_to_pytest(cli):
    cli.write("test_sample.py", """
        from eventlet import patcher

        def test_patched():
            assert patcher.is_monkey_patched("socket")

        def test_other():
            assert False
    """)
    result = cli("test", "-q", "-p", "no:cacheprovider", "-k", "patched", "test_sample.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 deselected" in result.stdout

    result = cli("test", "-q", "-p", "no:cacheprovider", "test_sample.py")
    assert result.returncode == 1
    assert "1 failed, 1 passed" in result.stdout


def test_test_command_hands_help_after_a_double_dash_to_pytest(cli):
    result = cli("test", "--", "--version")
    assert result.returncode == 0
    assert "pytest" in result.stdout + result.stderr


@pytest.mark.parametrize("text, expected", [
    ("9000", ("127.0.0.1", 9000)),
    ("0.0.0.0:9000", ("0.0.0.0", 9000)),
    ("localhost:0", ("localhost", 0)),
    ("[::1]:9000", ("::1", 9000)),
])
def test_parse_address(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "host:", ":80", "abc", "70000", "-1"])
def test_parse_address_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_address(text)

