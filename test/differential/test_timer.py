"""nameko.timer, side by side."""

from __future__ import annotations

from typing import Any


def test_zero_interval_fires_back_to_back(differ: Any) -> None:
    outcome = differ.assert_same("timer_zero", topology=False)
    assert outcome.nameko.report == {"declared": {"value": 0}, "other_greenthread_ran": True,
                                     "ticks_interleaved": True, "fired_often": True}
