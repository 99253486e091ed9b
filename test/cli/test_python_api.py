"""The CLI's Python API, as Nameko's tests and tools drive it: setup_parser,
``args.main``, ``run.import_service`` and ``run.main`` with a parsed namespace.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.cli import run
from nameko_like.cli.main import setup_parser
from nameko_like.exceptions import CommandError
from nameko_like.standalone.rpc import ClusterRpcProxy

MODULE = """
    from nameko_like.rpc import rpc

    VALUE = 1


    class Base:
        @rpc
        def shared(self):
            return "base"


    class Zebra(Base):
        name = "zebra"


    class Aardvark:
        name = "aardvark"

        @rpc
        def dig(self, depth):
            return depth * 2
"""


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding ``api_mod.py`` (and nothing imported from it yet)."""
    (tmp_path / "api_mod.py").write_text(textwrap.dedent(MODULE))
    (tmp_path / "api_none.py").write_text("class Plain:\n    pass\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("api_mod", "api_none"):
        sys.modules.pop(name, None)


def test_setup_parser_has_nameko_commands_and_options() -> None:
    parser = setup_parser()
    args = parser.parse_args(["run", "a", "b:Svc", "--broker", "amqp://x/",
                              "--backdoor-port", "3000"])
    assert args.services == ["a", "b:Svc"]
    assert args.broker == "amqp://x/"
    assert args.backdoor_port == 3000  # an int, as Nameko's parser gives
    assert parser.parse_args(["run", "a", "--backdoor-port", "0.0.0.0:3000"]).backdoor_port == (
        "0.0.0.0", 3000)
    assert parser.parse_args(["shell", "--interface", "plain"]).interface == "plain"
    for command in ("run", "shell", "show-config", "backdoor", "test"):
        extra = {"run": ["m"], "backdoor": ["3000"]}.get(command, [])
        assert callable(parser.parse_args([command, *extra]).main)


def test_version_short_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        setup_parser().parse_args(["-v"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("nameko_like ")


def test_import_service(module_dir: Path) -> None:
    # definition order; Base has entrypoints but no name, so it is no service
    assert run.import_service("api_mod") == [
        sys.modules["api_mod"].Zebra, sys.modules["api_mod"].Aardvark]
    assert run.import_service("api_mod:Aardvark") == [sys.modules["api_mod"].Aardvark]


@pytest.mark.parametrize(("path", "message"), [
    ("api_none", "no services found in module 'api_none'"),
    ("api_mod:Nope", "module 'api_mod' has no attribute 'Nope'"),
    ("api_mod:VALUE", "api_mod:VALUE is a int, not a service class"),
    ("no_such_module_here", "module 'no_such_module_here' not found"),
    ("api_mod.py", "did you mean 'api_mod'?"),
])
def test_import_service_errors(module_dir: Path, path: str, message: str) -> None:
    with pytest.raises(CommandError, match=message.replace(".", r"\.").replace("?", r"\?")):
        run.import_service(path)


def test_shell_interface_plain_is_the_python_prompt() -> None:
    from nameko_like.cli.shell import choose_interface

    assert choose_interface("plain") == "python"


@pytest.mark.integration
def test_run_main_with_a_parsed_namespace_serves_until_sigterm(
        module_dir: Path, rabbit_config: dict[str, Any]) -> None:
    args = setup_parser().parse_args(["run", "api_mod", "--broker", rabbit_config["AMQP_URI"]])
    runner = eventlet.spawn(run.main, args)
    try:
        with ClusterRpcProxy(rabbit_config, timeout=5) as cluster:
            answer = None
            for _ in range(100):
                try:
                    answer = (cluster.aardvark.dig(4), cluster.zebra.shared())
                    break
                except Exception:  # noqa: BLE001 - not serving yet
                    eventlet.sleep(0.1)
        assert answer == (8, "base")
    finally:
        os.kill(os.getpid(), signal.SIGTERM)
        with eventlet.Timeout(30):
            status = runner.wait()
    assert status == 0


@pytest.mark.integration
def test_run_main_with_a_namespace_shaped_as_namekos(
        module_dir: Path, rabbit_config: dict[str, Any]) -> None:
    config = module_dir / "config.yaml"
    config.write_text(f"AMQP_URI: {rabbit_config['AMQP_URI']}\n")
    # what Nameko's own parser would give: one config path, an int port, no --define
    args = argparse.Namespace(services=["api_mod:Aardvark"], config=str(config),
                              broker=None, backdoor_port=None)
    runner = eventlet.spawn(run.main, args)
    try:
        with ClusterRpcProxy(rabbit_config, timeout=5) as cluster:
            answer = None
            for _ in range(100):
                try:
                    answer = cluster.aardvark.dig(2)
                    break
                except Exception:  # noqa: BLE001 - not serving yet
                    eventlet.sleep(0.1)
        assert answer == 4
    finally:
        os.kill(os.getpid(), signal.SIGTERM)
        with eventlet.Timeout(30):
            status = runner.wait()
    assert status == 0
