"""nameko.utils, side by side."""

from __future__ import annotations

from typing import Any


def test_utils_helpers(differ: Any) -> None:
    outcome = differ.assert_same("utils_helpers", topology=False)
    report = outcome.nameko.report
    assert report["redacted_login"]["value"]["password"] == "********"
