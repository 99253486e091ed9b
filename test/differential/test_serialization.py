"""nameko.serialization, side by side."""

from __future__ import annotations

from typing import Any


def test_serialization_setup_and_round_trips(differ: Any) -> None:
    outcome = differ.assert_same("serialization_setup")
    report = outcome.nameko.report
    assert report["custom"] == {"serializer": "wrapped_json", "accept": ["wrapped_json"]}
    assert report["round_trip_custom"] == {"value": {"a": [1, 2.5, "x", None, True]}}
