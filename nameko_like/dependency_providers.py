"""Built-in dependency providers that need no broker."""

from __future__ import annotations

from typing import Any

from nameko_like.extensions import DependencyProvider

# Imported at run time, not under TYPE_CHECKING: the testing helpers read
# get_dependency's annotations (typing.get_type_hints) to spec their mocks.
from nameko_like.worker_context import WorkerContext


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

    def get_dependency(self, worker_ctx: WorkerContext) -> dict[str, Any]:
        """Return the config the container was created with."""
        return self.container.config
