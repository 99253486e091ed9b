"""A broker the CLI cannot use: each cause gets its own one-line fix.

Made for real: a wrong password and a missing vhost on the shared RabbitMQ,
a vhost the user has no permissions on, a closed port, and transports
nameko_like does not support (refused before anything connects).
"""

import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from nameko_like.containers import ServiceContainer
from nameko_like.exceptions import ConfigurationError
from nameko_like.rpc import rpc
from nameko_like.standalone.events import event_dispatcher
from nameko_like.standalone.rpc import ClusterRpcProxy, ServiceRpcProxy

SERVICE = """
    from nameko_like.rpc import rpc


    class Greeter:
        name = "greeter"

        @rpc
        def hello(self, who):
            return who
"""

SUPPORTED = "use one of amqp://, amqps://, pyamqp://, memory://"


def _replace(uri, password=None, path=None):
    parts = urlsplit(uri)
    netloc = parts.netloc
    if password is not None:
        user_info, _, host = netloc.rpartition("@")
        netloc = f"{user_info.partition(':')[0]}:{password}@{host}"
    return urlunsplit(parts._replace(netloc=netloc, path=path if path is not None else parts.path))


def _error_line(result, command="run"):
    """The single line of a failed command's stderr, checked for form."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    prefix = f"nameko_like {command}: error: "
    assert line.startswith(prefix)
    return line[len(prefix):]


@pytest.mark.integration
@pytest.mark.parametrize("command", ["run", "shell"])
def test_wrong_password_names_the_credentials(cli, amqp_uri, command):
    cli.write("greeter.py", SERVICE)
    uri = _replace(amqp_uri, password="not-the-password")
    args = ("run", "greeter") if command == "run" else ("shell",)
    message = _error_line(cli(*args, "--broker", uri), command)
    vhost = urlsplit(amqp_uri).path[1:]
    assert message == (
        f"the AMQP broker at amqp://guest:********@localhost:5672/{vhost} refused the login "
        "of user 'guest' (ACCESS_REFUSED - Login was refused using authentication mechanism "
        "PLAIN. For details see the broker logfile.); check the user and password in "
        "AMQP_URI (or --broker)")
    assert "not-the-password" not in message
    assert "rabbitmq-server" not in message


@pytest.mark.integration
def test_missing_vhost_says_how_to_create_it(cli, amqp_uri):
    cli.write("greeter.py", SERVICE)
    vhost = f"nameko_like_missing_{uuid.uuid4().hex[:8]}"
    message = _error_line(cli("run", "greeter", "--broker", _replace(amqp_uri, path="/" + vhost)))
    assert message == (
        f"the AMQP broker at amqp://guest:********@localhost:5672/{vhost} has no vhost "
        f"'{vhost}' (NOT_ALLOWED - vhost {vhost} not found); create it (`rabbitmqctl "
        f"add_vhost {vhost}`, then `rabbitmqctl set_permissions -p {vhost} guest '.*' '.*' "
        "'.*'`) or fix the vhost (the path) in AMQP_URI")


@pytest.mark.integration
def test_vhost_without_permissions_says_how_to_grant_them(cli, amqp_uri, rabbit_manager):
    cli.write("greeter.py", SERVICE)
    vhost = f"nameko_like_closed_{uuid.uuid4().hex[:8]}"
    rabbit_manager.create_vhost(vhost)
    # The API gave its own user (guest) permissions on the new vhost: take them back.
    response = rabbit_manager.session.delete(
        f"{rabbit_manager.base_url}/api/permissions/{vhost}/guest", timeout=10)
    assert response.status_code == 204, response.text
    try:
        message = _error_line(
            cli("run", "greeter", "--broker", _replace(amqp_uri, path="/" + vhost)))
    finally:
        rabbit_manager.delete_vhost(vhost)
    assert message.startswith(
        f"the AMQP broker at amqp://guest:********@localhost:5672/{vhost} refused user "
        f"'guest' access to vhost '{vhost}' (NOT_ALLOWED - access to vhost '{vhost}' "
        "refused for user 'guest'); ")
    assert message.endswith(
        f"give the user permissions on it (`rabbitmqctl set_permissions -p {vhost} guest "
        "'.*' '.*' '.*'`) or use another vhost in AMQP_URI")


def test_closed_port_says_start_the_broker(cli):
    cli.write("greeter.py", SERVICE)
    message = _error_line(cli("run", "greeter", "--broker", "amqp://guest:pw@127.0.0.1:1/"))
    # eventlet's green socket words the refusal as [Errno 111] ECONNREFUSED
    assert message == (
        "cannot reach the AMQP broker at amqp://guest:********@127.0.0.1:1/ ([Errno 111] "
        "ECONNREFUSED: nothing listens on that port); start RabbitMQ (`rabbitmq-server "
        "-detached`), fix the host or port in AMQP_URI, or run embedded with --broker memory://")


@pytest.mark.parametrize("command", ["run", "shell"])
@pytest.mark.parametrize("uri, scheme", [
    ("redis://localhost:6379/0", "redis"),
    ("sqs://key:secret@", "sqs"),
    ("amqp://localhost;kafka://localhost:9092", "kafka"),
])
def test_unsupported_transport_is_refused_at_once(cli, command, uri, scheme):
    cli.write("greeter.py", SERVICE)
    args = ("run", "greeter") if command == "run" else ("shell",)
    started = time.monotonic()
    message = _error_line(cli(*args, "--broker", uri, timeout=20), command)
    assert time.monotonic() - started < 10  # not after a connect attempt, nor ever retried
    assert message.startswith("AMQP_URI '")
    assert f"uses the '{scheme}' transport, which nameko_like does not support" in message
    assert SUPPORTED in message
    assert "secret" not in message


@pytest.mark.integration
def test_pyamqp_scheme_runs(cli, rabbit_config):
    """pyamqp:// is kombu's explicit name for the amqp transport: it works as amqp:// does."""
    cli.write("greeter.py", SERVICE)
    uri = rabbit_config["AMQP_URI"].replace("amqp://", "pyamqp://", 1)
    run = cli.start("run", "greeter", "--broker", uri)
    run.wait_for_log("running services greeter")
    result = cli("shell", "--broker", uri, input="print(n.rpc.greeter.hello('pyamqp'))")
    assert result.stdout == "pyamqp\n", result.stderr


class Greeter:
    name = "greeter"

    @rpc
    def hello(self, who):
        return who


@pytest.mark.parametrize("make", [
    lambda config: ServiceContainer(Greeter, config),
    lambda config: ClusterRpcProxy(config).start(),
    lambda config: ServiceRpcProxy("greeter", config).start(),
    lambda config: event_dispatcher(config)("src", "kind", {}),
], ids=["ServiceContainer", "ClusterRpcProxy", "ServiceRpcProxy", "event_dispatcher"])
def test_python_api_refuses_unsupported_transport(make):
    with pytest.raises(ConfigurationError) as raised:
        make({"AMQP_URI": "redis://user:secret@localhost:6379/0"})
    message = str(raised.value)
    assert message.startswith(
        "AMQP_URI 'redis://user:********@localhost:6379/0' uses the 'redis' transport")
    assert SUPPORTED in message


def test_python_api_refuses_a_uri_that_is_not_a_string():
    with pytest.raises(ConfigurationError, match=r"^AMQP_URI must be a string such as "
                                                 r"'amqp://guest:guest@localhost:5672/', "
                                                 r"got int 5672$"):
        ServiceContainer(Greeter, {"AMQP_URI": 5672})
