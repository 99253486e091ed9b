"""nameko.contextdata, side by side."""

from __future__ import annotations

from typing import Any


def test_context_data_providers(differ: Any) -> None:
    outcome = differ.assert_same("contextdata_providers")
    report = outcome.nameko.report
    assert report["relayed"]["value"]["user_id"] == 7
    assert report["without_context"]["value"]["language"] is None
