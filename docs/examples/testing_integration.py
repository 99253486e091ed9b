"""Integration tests: several real services, a real broker, real clients."""

from nameko_like.standalone.rpc import ClusterRpcProxy
from nameko_like.testing.services import replace_dependencies

from http_basics import ShopService
from rpc_greeting import GreetingService, WelcomeService


def test_welcome_everyone(runner_factory, rabbit_config):
    # rabbit_config: a fresh RabbitMQ vhost for this test, deleted after it.
    runner = runner_factory(rabbit_config, GreetingService, WelcomeService)
    runner.start()

    with ClusterRpcProxy(rabbit_config, timeout=10) as cluster:
        assert cluster.welcome_service.welcome(["Ada", "Bob"]) == [
            "Hello, Ada!",
            "Hello, Bob!",
        ]


def test_welcome_with_a_fake_greeting(container_factory, rabbit_config):
    # Only WelcomeService runs; its RpcProxy is replaced by a mock.
    container = container_factory(WelcomeService, rabbit_config)
    greeting = replace_dependencies(container, "greeting")
    greeting.hello.side_effect = lambda name: f"Hey {name}"
    container.start()

    with ClusterRpcProxy(rabbit_config, timeout=10) as cluster:
        assert cluster.welcome_service.welcome_one("Ada") == "Hey Ada"


def test_shop_over_http(container_factory, web_config, web_session):
    # web_config: a free port for the web server; web_session: a requests
    # session whose relative URLs go to it.
    container = container_factory(ShopService, web_config)
    container.start()

    response = web_session.post("/stock/pear", data="4")
    assert response.status_code == 201
    assert web_session.get("/stock/pear").json() == {"item": "pear", "count": 4}
