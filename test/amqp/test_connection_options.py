"""``LOGIN_METHOD`` and ``AMQP_SSL`` end to end: a service and a cluster proxy
connect with them, and a wrong value fails with a clear error.

``LOGIN_METHOD`` runs against the shared broker (a fresh vhost per test).
``AMQP_SSL`` needs a TLS listener, which the shared broker has not got: a
private RabbitMQ node (:mod:`nameko_like.testing.private_broker`: free
ports, its own HOME, Erlang cookie, data and log directories, no plugins) is
started for this module with a TLS listener, a throwaway CA and server
certificate made by ``openssl``, and stopped at the end. Its directory
prefix starts with the fault tier's, so that tier's orphan sweep also halts
a node left by a killed run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.amqp.connection import make_connection, verify_amqp_uri
from nameko_like.events import EventDispatcher, event_handler
from nameko_like.rpc import rpc
from nameko_like.standalone.rpc import ClusterRpcProxy
from nameko_like.testing.private_broker import PrivateBroker, rabbitmq_available

pytestmark = pytest.mark.integration

#: Same prefix as the fault tier's nodes: its orphan sweep covers ours too.
BASE_DIR_PREFIX = "nameko_like_fault_tls_"


class Echo:
    name = "echo"

    @rpc
    def echo(self, value):
        return value


def call_echo(container_factory, config: dict, value: str) -> str:
    container_factory(Echo, dict(config)).start()
    with ClusterRpcProxy(dict(config), timeout=10) as cluster:
        return cluster.echo.echo(value)


# --- LOGIN_METHOD -------------------------------------------------------------


@pytest.fixture
def shared_config(rabbit_config: dict) -> Iterator[dict]:
    # the container's and the proxy's publish connections close with them
    yield rabbit_config


@pytest.mark.parametrize("login_method", ["AMQPLAIN", "PLAIN"])
def test_login_method_service_and_proxy(container_factory, shared_config, rabbit_manager,
                                        login_method):
    config = dict(shared_config, LOGIN_METHOD=login_method)
    verify_amqp_uri(config)
    container_factory(Echo, dict(config)).start()
    with ClusterRpcProxy(dict(config), timeout=10) as cluster:
        assert cluster.echo.echo(login_method) == login_method

        # Both accept both mechanisms, so success alone proves nothing: the
        # broker reports which one each connection of the vhost used.
        def mechanisms():
            found = [conn.get("auth_mechanism") for conn in rabbit_manager.get_connections()
                     if conn.get("vhost") == shared_config["vhost"]]
            return found if len(found) >= 2 and None not in found else None

        used = rabbit_manager.wait_for(mechanisms, timeout=12, interval=0.25)
    assert set(used) == {login_method}, used


def test_unknown_login_method_fails_clearly(shared_config):
    config = dict(shared_config, LOGIN_METHOD="NOPE")
    with pytest.raises(ConnectionError) as info:
        verify_amqp_uri(config)
    message = str(info.value)
    assert "cannot reach the AMQP broker at amqp://" in message
    assert shared_config["vhost"] in message
    assert "NOPE" in message  # py-amqp: ('Invalid login method', 'NOPE')


# --- AMQP_SSL: a private TLS node ---------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                            timeout=60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr[-2000:]}")


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", str(key), "-out", str(cert), "-subj", f"/CN=nameko_like {name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    return cert, key


def make_server_cert(directory: Path, ca_cert: Path, ca_key: Path) -> tuple[Path, Path]:
    """A server certificate for localhost / 127.0.0.1 signed by the CA."""
    cert, key, csr = directory / "server.pem", directory / "server.key", directory / "server.csr"
    ext = directory / "server.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
    )
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
             "-subj", "/CN=localhost", cwd=directory)
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "2", "-out", str(cert), "-extfile", str(ext),
             cwd=directory)
    return cert, key


def tls_listener_config(broker: PrivateBroker, ca_cert: Path, cert: Path,
                        key: Path) -> list[str]:
    """``rabbitmq.conf`` lines for a TLS listener on the broker's ``ssl`` port."""
    return [
        f"listeners.ssl.1 = 127.0.0.1:{broker.ports['ssl']}",
        f"ssl_options.cacertfile = {ca_cert}",
        f"ssl_options.certfile = {cert}",
        f"ssl_options.keyfile = {key}",
        "ssl_options.verify = verify_none",
        "ssl_options.fail_if_no_peer_cert = false",
    ]


class Tls:
    """What the TLS tests need: the node and the certificates."""

    def __init__(self, broker: PrivateBroker, ca_cert: Path, other_ca_cert: Path) -> None:
        self.broker = broker
        self.ssl_port = broker.ports["ssl"]
        self.ca_cert = ca_cert
        self.other_ca_cert = other_ca_cert
        # localhost, not 127.0.0.1: the name the hostname check verifies;
        # the node's default guest user, allowed from localhost
        self.uri = broker.amqp_uri(host="localhost", port=self.ssl_port)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tls]:
    if not rabbitmq_available():
        pytest.skip("needs RabbitMQ installed (rabbitmq-server, rabbitmqctl)")
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make certificates")
    certs = tmp_path_factory.mktemp("tls_certs")
    ca_cert, ca_key = make_ca(certs, "ca")
    other_ca_cert, _ = make_ca(certs, "other_ca")
    cert, key = make_server_cert(certs, ca_cert, ca_key)
    broker = PrivateBroker(
        "nameko_like_tls", BASE_DIR_PREFIX, extra_ports=("ssl",),
        extra_config=lambda broker: tls_listener_config(broker, ca_cert, cert, key))
    with broker:
        yield Tls(broker, ca_cert, other_ca_cert)


@pytest.fixture
def tls_configs() -> Iterator[list[dict]]:
    """Configs a test uses (their publish connections close with the
    containers and proxies that opened them, before the node goes away)."""
    made: list[dict] = []
    yield made


@pytest.mark.parametrize("extra", [
    pytest.param({}, id="ca_certs"),
    pytest.param({"server_hostname": "localhost"}, id="ca_certs+hostname_check"),
])
def test_amqp_ssl_service_and_proxy(container_factory, tls, tls_configs, extra):
    amqp_ssl = {"ca_certs": str(tls.ca_cert), "cert_reqs": ssl.CERT_REQUIRED, **extra}
    config = {"AMQP_URI": tls.uri, "AMQP_SSL": amqp_ssl}
    tls_configs.append(config)
    verify_amqp_uri(config)
    with make_connection(config, heartbeat=False) as connection:
        connection.ensure_connection(max_retries=1, timeout=5)
        sock = connection.connection.transport.sock
        assert sock.version().startswith("TLS"), sock.version()  # really TLS
    assert call_echo(container_factory, config, "over tls") == "over tls"


def test_without_amqp_ssl_the_tls_port_fails(tls):
    config = {"AMQP_URI": tls.uri}
    with pytest.raises(ConnectionError) as info:
        verify_amqp_uri(config, timeout=5)
    assert f"localhost:{tls.ssl_port}" in str(info.value)
    assert "guest:guest" not in str(info.value)  # password masked


def test_amqp_ssl_rejects_a_server_cert_from_another_ca(tls):
    # cert_reqs is honoured: the client really checks the server certificate
    config = {"AMQP_URI": tls.uri,
              "AMQP_SSL": {"ca_certs": str(tls.other_ca_cert), "cert_reqs": ssl.CERT_REQUIRED}}
    with pytest.raises(ConnectionError) as info:
        verify_amqp_uri(config, timeout=5)
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)


# --- heartbeats over TLS --------------------------------------------------------

#: Short, so that an idle spell of a few intervals stays short too.
TLS_HEARTBEAT = 1
#: RabbitMQ closes a connection it heard nothing from for about two intervals.
IDLE_INTERVALS = 5


class Pinged:
    name = "pinged"
    received: list[str] = []
    dispatch = EventDispatcher()

    @rpc
    def ping(self, value):
        self.dispatch("pinged", value)
        return value

    @event_handler("pinged", "pinged")
    def on_pinged(self, value):
        Pinged.received.append(value)


def heartbeat_config(tls: Tls, vhost: str) -> dict:
    """A TLS config with a short heartbeat, on a vhost of the test's own (a
    connection an earlier test has not closed yet is on another)."""
    tls.broker.add_vhost(vhost)
    amqp_ssl = {"ca_certs": str(tls.ca_cert), "cert_reqs": ssl.CERT_REQUIRED}
    return {"AMQP_URI": tls.broker.amqp_uri(vhost, host="localhost", port=tls.ssl_port),
            "AMQP_SSL": amqp_ssl, "HEARTBEAT": TLS_HEARTBEAT}


def broker_connections(tls: Tls, vhost: str) -> dict[str, dict]:
    """The node's client connections to ``vhost`` by name (client and
    server address and port)."""
    result = tls.broker.rabbitmqctl("list_connections", "name", "vhost", "ssl", "timeout",
                                    "--formatter", "json")
    return {conn["name"]: conn for conn in json.loads(result.stdout or "[]")
            if conn["vhost"] == vhost}


def ping_and_see_the_event(cluster, value: str) -> None:
    assert cluster.pinged.ping(value) == value
    deadline = time.monotonic() + 10
    while value not in Pinged.received and time.monotonic() < deadline:
        eventlet.sleep(0.05)
    assert value in Pinged.received


def test_idle_tls_connections_keep_their_heartbeats(container_factory, tls, tls_configs,
                                                    caplog):
    # Nothing but heartbeats crosses an idle connection: if a service's or
    # a proxy's connection sent none, the broker would close it after about
    # two intervals (and we would reconnect, log it, and redeliver what it
    # held). The node's connection list before and after the idle spell
    # must be the same connections, still TLS, with our heartbeat.
    Pinged.received = []
    config = heartbeat_config(tls, "idle")
    tls_configs.append(config)
    container_factory(Pinged, dict(config)).start()
    with caplog.at_level(logging.WARNING), ClusterRpcProxy(dict(config), timeout=10) as cluster:
        ping_and_see_the_event(cluster, "before")
        before = broker_connections(tls, "idle")
        # the service's consumer and publisher, the proxy's publisher and replies
        assert len(before) >= 3, before
        assert all(conn["ssl"] and conn["timeout"] == TLS_HEARTBEAT
                   for conn in before.values()), before

        eventlet.sleep(IDLE_INTERVALS * TLS_HEARTBEAT)

        after = broker_connections(tls, "idle")
        assert after.keys() == before.keys(), (sorted(before), sorted(after))
        ping_and_see_the_event(cluster, "after")
    assert broker_connections(tls, "idle").keys() <= before.keys()
    assert [record.getMessage() for record in caplog.records
            if record.name.startswith("nameko_like")] == []


#: How long the node is frozen: past two heartbeat intervals.
FREEZE_SECONDS = 4 * TLS_HEARTBEAT


def test_a_silent_tls_broker_is_found_out_by_heartbeats(container_factory, tls, tls_configs,
                                                        caplog):
    # The node's VM frozen (SIGSTOP): its sockets stay open, nothing answers.
    # The service's heartbeat check must find the connection dead and wake
    # its reader with a connection error (an SSL socket shut down through
    # its SSL object fails the reader with a ValueError instead, which no
    # reconnect logic takes for a lost connection), so that the service
    # reconnects once the node answers again.
    Pinged.received = []
    config = heartbeat_config(tls, "silent")
    tls_configs.append(config)
    container_factory(Pinged, dict(config)).start()
    with ClusterRpcProxy(dict(config), timeout=10) as cluster:
        ping_and_see_the_event(cluster, "before")
    beam_pid = int(tls.broker.rabbitmqctl("eval", "os:getpid().").stdout.strip().strip('"'))

    with caplog.at_level(logging.WARNING):
        os.kill(beam_pid, signal.SIGSTOP)
        try:
            eventlet.sleep(FREEZE_SECONDS)
        finally:
            os.kill(beam_pid, signal.SIGCONT)
        with ClusterRpcProxy(dict(config), timeout=20) as cluster:
            ping_and_see_the_event(cluster, "after")

    messages = [record.getMessage() for record in caplog.records
                if record.name.startswith("nameko_like")]
    # the freeze was noticed by the service's consumer, and nothing worse happened
    assert any(message.startswith("connection to ") and "reconnecting" in message
               for message in messages), messages
    assert [record.getMessage() for record in caplog.records
            if record.levelno >= logging.ERROR] == []
