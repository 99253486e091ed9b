"""Declaration errors (timer, http, container, runner) are ConfigurationErrors
that are also the builtin they used to be, and name the fix."""

import pytest

from nameko_like.containers import get_service_name
from nameko_like.exceptions import (
    ConfigurationError,
    DeclarationError,
    NamekoLikeException,
    ServiceNameError,
)
from nameko_like.timer import timer
from nameko_like.web.handlers import http


def declare(decorator):
    return decorator(lambda self: None)


@pytest.mark.parametrize("make, message", [
    (lambda: declare(timer(interval=-1)), "must not be negative"),
    (lambda: declare(timer(interval="5")), "must be a number of seconds"),
    (lambda: declare(timer()), "needs either interval=SECONDS or cron"),
    (lambda: declare(http("G T", "/x")), "invalid HTTP method list"),
    (lambda: declare(http("GET", "items")), "starts with '/'"),
    (lambda: declare(http("GET", "/x/<int:y")), "malformed url rule"),
    (lambda: declare(http("GET", None)), "takes a method and a URL rule"),
])
def test_bad_declarations_raise_declaration_errors(make, message):
    with pytest.raises(DeclarationError, match=message) as caught:
        make()
    assert isinstance(caught.value, (ConfigurationError, NamekoLikeException, ValueError))


def test_unknown_converter_is_left_to_the_server():
    # A WebServer subclass may add converters to its map.
    declare(http("GET", "/x/<custom:y>"))


class Nameless:
    pass


def test_service_class_without_a_name():
    with pytest.raises(ServiceNameError, match="must define a `name`") as caught:
        get_service_name(Nameless)
    assert isinstance(caught.value, ConfigurationError)
    assert isinstance(caught.value, AttributeError)  # what it raised before


class Alpha:
    name = "alpha"


class OtherAlpha:
    name = "alpha"


def test_runner_misuse(runner_factory, empty_config):
    runner = runner_factory(empty_config, Alpha)
    with pytest.raises(DeclarationError, match="another `name`"):
        runner.add_service(OtherAlpha)
    with pytest.raises(DeclarationError, match="pass the class itself"):
        runner.add_service(Alpha())
