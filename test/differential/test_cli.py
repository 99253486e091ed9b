"""``nameko`` and ``nameko_like`` on the command line, side by side."""

from __future__ import annotations

from typing import Any


def test_cli_python_api(differ: Any) -> None:
    # the services' queues are compared by the report; how many reply queues
    # the polling left depends on start-up timing
    differ.assert_same("cli_api", topology=False)


def test_cli_commands(differ: Any) -> None:
    differ.assert_same("cli_commands")
