"""Run services from your own code instead of ``nameko_like run``."""

from nameko_like.runners import run_services
from nameko_like.standalone.rpc import ClusterRpcProxy

from helloworld import GreetingService


def main(config):
    # The with-block starts the service and stops it gracefully on exit.
    with run_services(config, GreetingService):
        with ClusterRpcProxy(config, timeout=10) as cluster:
            return cluster.greeting_service.hello("Ada")


if __name__ == "__main__":
    from nameko_like._eventlet import eventlet

    eventlet.monkey_patch()  # as `nameko_like run` does, before any I/O
    print(main({"AMQP_URI": "memory://"}))
