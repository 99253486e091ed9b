"""nameko.testing (the pytest plugin, its fixtures and the helpers), side by side.

Each scenario writes one test file and runs it in an inner pytest session
with each framework's own plugin; the reports hold every inner test's
outcome and what the tests recorded.
"""

from __future__ import annotations

from typing import Any


def test_plugin_options_and_fixtures(differ: Any) -> None:
    differ.assert_same("testing_fixtures", topology=False)


def test_services_utils_and_rabbit_client(differ: Any) -> None:
    differ.assert_same("testing_helpers", topology=False)
