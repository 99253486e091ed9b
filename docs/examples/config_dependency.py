from nameko_like.dependency_providers import Config
from nameko_like.rpc import rpc


class GreetingService:
    name = "greeting_service"

    # The whole config dict the service was started with.
    config = Config()

    @rpc
    def hello(self, name):
        greeting = self.config.get("GREETING", "Hello")
        return f"{greeting}, {name}!"
