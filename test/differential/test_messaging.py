"""nameko.messaging, side by side."""

from __future__ import annotations

from typing import Any


def test_publisher_and_consume(differ: Any) -> None:
    outcome = differ.assert_same("messaging_publish_consume")
    assert outcome.nameko.report["received"] == [
        ["other", [1, "x"], "fr"], ["work", {"job": 1}, "fr"]]
