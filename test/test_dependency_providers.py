"""Built-in dependency providers."""

import pytest

from nameko_like.dependency_providers import Config
from nameko_like.testing.services import dummy, entrypoint_hook, worker_factory


class Greeter:
    name = "greeter"
    config = Config()

    @dummy
    def greet(self, who):
        return f"{self.config.get('GREETING', 'hello')}, {who}"


def test_config_injects_the_container_config(container_factory, empty_config):
    config = dict(empty_config, GREETING="bonjour")
    container = container_factory(Greeter, config)
    container.start()

    with entrypoint_hook(container, "greet") as greet:
        assert greet("Ann") == "bonjour, Ann"


def test_config_in_a_unit_test():
    service = worker_factory(Greeter, config={"GREETING": "hi"})
    assert service.greet("Bo") == "hi, Bo"


def test_config_mock_has_the_declared_type_as_spec():
    service = worker_factory(Greeter)

    service.config.get.return_value = "hey"
    assert service.greet("Cy") == "hey, Cy"
    with pytest.raises(AttributeError):
        service.config.no_such_dict_method  # noqa: B018
