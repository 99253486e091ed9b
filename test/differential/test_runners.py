"""nameko.runners, side by side."""

from __future__ import annotations

from typing import Any


def test_adding_the_same_service_twice_is_harmless(differ: Any) -> None:
    outcome = differ.assert_same("runners_add_service")
    assert outcome.nameko.report["second_add"] == {"value": None}
    assert outcome.nameko.report["containers"] == ["Echo"]
