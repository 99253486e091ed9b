from nameko_like.rpc import RpcProxy, rpc


class GreetingService:
    name = "greeting_service"

    @rpc
    def hello(self, name):
        return f"Hello, {name}!"


class WelcomeService:
    name = "welcome_service"

    # Calls to another service's RPC methods, with a timeout in seconds.
    greeting = RpcProxy("greeting_service", timeout=10)

    @rpc
    def welcome(self, names):
        # call_async sends every request at once; result() waits for one.
        replies = [self.greeting.hello.call_async(name) for name in names]
        return [reply.result() for reply in replies]

    @rpc
    def welcome_one(self, name):
        # A plain call waits for the answer, and raises what the callee raised.
        return self.greeting.hello(name)
