"""nameko.rpc and nameko.standalone.rpc, side by side."""

from __future__ import annotations

from typing import Any


def test_rpc_calls_values_and_errors(differ: Any) -> None:
    differ.assert_same("rpc_calls")
