"""Nameko-style tests of the nameko-redis service, run by pytest inside .venv-alias.

The real Nameko is installed there, so pytest also loads its plugin entry
point ``pytest_nameko`` (``nameko.testing.pytest``); under the alias that is
an inert stand-in and the fixtures come from nameko_like's plugin.
"""

import os
import sys
from typing import Any

import nameko
from alias_counters import CountersService
from nameko.testing.services import entrypoint_hook

import nameko_like
import nameko_like.testing.pytest


def test_the_alias_is_on() -> None:
    """``nameko`` is nameko_like, and the extension's provider subclasses ours."""
    import nameko_redis

    from nameko_like.extensions import DependencyProvider

    assert nameko is nameko_like
    assert sys.modules["nameko.testing.services"] is sys.modules["nameko_like.testing.services"]
    assert issubclass(nameko_redis.Redis, DependencyProvider)


def test_nameko_plugin_is_the_inert_stand_in(pytestconfig: Any) -> None:
    """Nameko's plugin entry point is registered, as the stand-in, beside ours."""
    stand_in = pytestconfig.pluginmanager.get_plugin("pytest_nameko")
    ours = pytestconfig.pluginmanager.get_plugin("nameko_like")
    assert stand_in is sys.modules["nameko.testing.pytest"]
    assert ours is nameko_like.testing.pytest
    assert stand_in is not ours
    # look-ups on the stand-in are answered by our plugin
    assert stand_in.container_factory is ours.container_factory


def test_extension_in_container(container_factory: Any) -> None:
    """container_factory and entrypoint_hook drive the nameko-redis service."""
    config = {"AMQP_URI": "memory://",
              "REDIS_URIS": {"development": os.environ["ALIAS_CHECK_REDIS_URI"]}}
    container = container_factory(CountersService, config)
    container.start()
    key = os.environ["ALIAS_CHECK_KEY"]
    with entrypoint_hook(container, "incr") as incr:
        assert incr(key) == 1
        assert incr(key) == 2
