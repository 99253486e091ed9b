"""nameko.exceptions, side by side."""

from __future__ import annotations

from typing import Any


def test_exceptions_serialize_deserialize_and_hierarchy(differ: Any) -> None:
    outcome = differ.assert_same("exceptions_wire")
    report = outcome.nameko.report
    assert report["serialize_value_error"]["exc_args"] == ["boom", "42", ["1", "2"], "None"]
    assert report["calls"]["registered"]["raised"]["type"] == "Registered"
    assert report["calls"]["not_registered"]["raised"]["type"] == "RemoteError"
