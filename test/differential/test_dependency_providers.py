"""nameko.dependency_providers, side by side (Config; the scenario is shared
with contextdata)."""

from __future__ import annotations

from typing import Any


def test_config_dependency(differ: Any) -> None:
    outcome = differ.assert_same("contextdata_providers", topology=False)
    assert outcome.nameko.report["settings"]["value"] == {
        "GREETING": "hej", "is_dict": True, "has_amqp_uri": True}
