"""nameko.web.handlers and nameko.web.websocket, side by side."""

from __future__ import annotations

from typing import Any


def test_http_entrypoints_statuses_bodies_and_headers(differ: Any) -> None:
    differ.assert_same("web_http", topology=False)


def test_websocket_rpc_errors_and_hub(differ: Any) -> None:
    differ.assert_same("web_websocket", topology=False)


def test_websocket_fixture_client(differ: Any) -> None:
    differ.assert_same("web_websocket_fixture", topology=False)
