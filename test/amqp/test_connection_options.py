"""``LOGIN_METHOD`` and ``AMQP_SSL`` end to end: a service and a cluster proxy
connect with them, and a wrong value fails with a clear error.

``LOGIN_METHOD`` runs against the shared broker (a fresh vhost per test).
``AMQP_SSL`` needs a TLS listener, which the shared broker has not got: a
private RabbitMQ node is started for this module (free ports, its own HOME,
Erlang cookie, data and log directories, no plugins), with a throwaway CA
and server certificate made by ``openssl``, and stopped at the end. The
node-start code is a trimmed copy of ``test/fault/conftest.py`` (conftest
modules are not importable); the directory layout and prefix are the same,
so that conftest's orphan sweep also halts a node left by a killed run.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nameko_like.amqp.connection import make_connection, verify_amqp_uri
from nameko_like.amqp.publish_channel import get_publish_channel
from nameko_like.rpc import rpc
from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = pytest.mark.integration

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
#: Seconds the private node may take to boot (a few seconds here).
NODE_START_DEADLINE = 60.0
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
    yield rabbit_config
    # a proxy's process-wide publish connection to this vhost
    get_publish_channel(rabbit_config).close()


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


def _rabbit_tool(name: str) -> str | None:
    direct = RABBIT_BIN / name
    if direct.exists():
        return str(direct)
    return shutil.which(name)


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port(taken: set[int]) -> int:
    # below the ephemeral range, with dist port + 10000 free for the CLI tools
    for _ in range(200):
        port = random.randrange(20000, 30000)
        if port in taken or not _port_is_free(port) or not _port_is_free(port + 10000):
            continue
        taken.add(port)
        return port
    raise RuntimeError("no free port found for the private RabbitMQ node")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


class TlsNode:
    """A private RabbitMQ node with a plain and a TLS listener on 127.0.0.1."""

    def __init__(self, base_dir: Path, ca_cert: Path, cert: Path, key: Path) -> None:
        self.base_dir = base_dir
        taken: set[int] = set()
        self.tcp_port = _free_port(taken)
        self.ssl_port = _free_port(taken)
        self.dist_port = _free_port(taken)
        self.node = f"nameko_like_tls_{os.getpid()}@localhost"
        self.server = _rabbit_tool("rabbitmq-server")
        self.ctl_tool = _rabbit_tool("rabbitmqctl")
        self.log_dir = base_dir / "log"
        cookie = base_dir / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        (base_dir / "enabled_plugins").write_text("[].\n")
        (base_dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.tcp_port}\n"
            f"listeners.ssl.1 = 127.0.0.1:{self.ssl_port}\n"
            f"ssl_options.cacertfile = {ca_cert}\n"
            f"ssl_options.certfile = {cert}\n"
            f"ssl_options.keyfile = {key}\n"
            "ssl_options.verify = verify_none\n"
            "ssl_options.fail_if_no_peer_cert = false\n"
            "log.file.level = info\n"
        )
        (base_dir / "rabbitmq-env.conf").write_text("")
        self.env = dict(os.environ)
        self.env.pop("RABBITMQ_ERLANG_COOKIE", None)
        self.env.update({
            "HOME": str(base_dir),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.tcp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(base_dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.log_dir),
            "RABBITMQ_PID_FILE": str(base_dir / "rabbit.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base_dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(base_dir / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base_dir / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(base_dir / "rabbitmq-env.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        })
        # for the fault tier's orphan sweep, should this run die before teardown
        (base_dir / "owner.pid").write_text(str(os.getpid()))
        (base_dir / "node").write_text(self.node)

    def ctl(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
        return subprocess.run([self.ctl_tool, "-n", self.node, "-q", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def start(self) -> None:
        subprocess.run([self.server, "-detached"], env=self.env, check=True, timeout=30,
                       capture_output=True)
        deadline = time.monotonic() + NODE_START_DEADLINE
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"private TLS node {self.node} did not start within "
                                   f"{NODE_START_DEADLINE}s:\n{self.log_tail()}")
            try:
                if self.ctl("await_startup", timeout=max(remaining, 1)).returncode == 0:
                    return
            except subprocess.TimeoutExpired:
                continue
            time.sleep(0.5)

    def stop(self) -> None:
        try:
            self.ctl("stop", timeout=60)
        except subprocess.TimeoutExpired:
            pass
        pid_file = self.base_dir / "rabbit.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + 15
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        logs = sorted(self.log_dir.glob("*.log")) if self.log_dir.exists() else []
        text = "".join(path.read_text(errors="replace") for path in logs)
        return "\n".join(text.splitlines()[-lines:])


class Tls:
    """What the TLS tests need: the node and the certificates."""

    def __init__(self, node: TlsNode, ca_cert: Path, other_ca_cert: Path) -> None:
        self.node = node
        self.ca_cert = ca_cert
        self.other_ca_cert = other_ca_cert
        self.uri = f"amqp://guest:guest@localhost:{node.ssl_port}/"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tls]:
    if _rabbit_tool("rabbitmq-server") is None or _rabbit_tool("rabbitmqctl") is None:
        pytest.skip("needs RabbitMQ installed (rabbitmq-server, rabbitmqctl)")
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make certificates")
    certs = tmp_path_factory.mktemp("tls_certs")
    ca_cert, ca_key = make_ca(certs, "ca")
    other_ca_cert, _ = make_ca(certs, "other_ca")
    cert, key = make_server_cert(certs, ca_cert, ca_key)
    base_dir = Path(tempfile.mkdtemp(prefix=BASE_DIR_PREFIX))
    base_dir.chmod(0o755)
    node = TlsNode(base_dir, ca_cert, cert, key)
    try:
        node.start()
        yield Tls(node, ca_cert, other_ca_cert)
    finally:
        node.stop()
        shutil.rmtree(base_dir, ignore_errors=True)


@pytest.fixture
def tls_configs() -> Iterator[list[dict]]:
    """Configs a test adds here get their publish connection closed after it
    (before the node goes away at the end of the module)."""
    made: list[dict] = []
    yield made
    for config in made:
        get_publish_channel(config).close()


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
    assert f"localhost:{tls.node.ssl_port}" in str(info.value)
    assert "guest:guest" not in str(info.value)  # password masked


def test_amqp_ssl_rejects_a_server_cert_from_another_ca(tls):
    # cert_reqs is honoured: the client really checks the server certificate
    config = {"AMQP_URI": tls.uri,
              "AMQP_SSL": {"ca_certs": str(tls.other_ca_cert), "cert_reqs": ssl.CERT_REQUIRED}}
    with pytest.raises(ConnectionError) as info:
        verify_amqp_uri(config, timeout=5)
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
