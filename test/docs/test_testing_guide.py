"""The testing guide's example tests (``docs/examples/testing_*.py``), run here.

pytest collects the test functions imported below as tests of this module.
Those needing RabbitMQ carry this suite's ``integration`` marker.
"""

import pytest

from testing_hooks import test_hello, test_placing_an_order_sends_an_email
from testing_integration import (
    test_shop_over_http,
    test_welcome_everyone,
    test_welcome_with_a_fake_greeting,
)
from testing_unit import test_pay_writes_both_entries, test_welcome_one

integration = pytest.mark.integration
test_hello = integration(test_hello)
test_placing_an_order_sends_an_email = integration(test_placing_an_order_sends_an_email)
test_welcome_everyone = integration(test_welcome_everyone)
test_welcome_with_a_fake_greeting = integration(test_welcome_with_a_fake_greeting)

__all__ = [
    "test_hello", "test_pay_writes_both_entries", "test_placing_an_order_sends_an_email",
    "test_shop_over_http", "test_welcome_everyone", "test_welcome_one",
    "test_welcome_with_a_fake_greeting",
]
