"""nameko.standalone.rpc and nameko.standalone.events, side by side."""

from __future__ import annotations

from typing import Any


def test_standalone_rpc_proxies(differ: Any) -> None:
    differ.assert_same("standalone_rpc")


def test_standalone_event_dispatcher(differ: Any) -> None:
    differ.assert_same("standalone_events")
