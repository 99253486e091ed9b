"""Built-in dependency providers that need no broker."""

from __future__ import annotations

from typing import Any

from nameko_like.extensions import DependencyProvider


class Config(DependencyProvider):
    """Injects the container's configuration dict.

    Example::

        class Service:
            name = "greeter"
            config = Config()

            @rpc
            def greeting(self):
                return self.config.get("GREETING", "hello")
    """

    def get_dependency(self, worker_ctx: Any) -> dict:
        """Return the config the container was created with."""
        return self.container.config
