"""``nameko_like run`` when the HTTP server's address is taken: the address,
the config key and the fix on one line, not ``OSError: [Errno 98]``."""

import socket

import pytest

WEB_SERVICE = """
    from nameko_like.web.handlers import http


    class Site:
        name = "site"

        @http("GET", "/")
        def index(self, request):
            return "hi"
"""


@pytest.fixture
def taken_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_busy_address_names_the_address_and_the_key(cli, taken_port):
    cli.write("websites.py", WEB_SERVICE)
    result = cli("run", "websites:Site", "--broker", "memory://",
                 "--define", f"WEB_SERVER_ADDRESS=127.0.0.1:{taken_port}")
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"nameko_like run: error: services failed to start: cannot serve HTTP on "
        f"127.0.0.1:{taken_port} (WEB_SERVER_ADDRESS): Address already in use; another "
        "process, or another service with @http entrypoints in this one, listens there "
        "(run such services in separate processes): stop it or set WEB_SERVER_ADDRESS to "
        "another address (e.g. "
        f"'127.0.0.1:{taken_port + 1}'; port 0 picks a free one)")
    assert "Errno 98" not in result.stderr
    assert "Traceback" not in result.stderr


def test_address_that_is_not_this_machines(cli):
    cli.write("websites.py", WEB_SERVICE)
    # TEST-NET-1 (RFC 5737): never an address of this machine
    result = cli("run", "websites:Site", "--broker", "memory://",
                 "--define", "WEB_SERVER_ADDRESS=192.0.2.1:8000")
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1] == (
        "nameko_like run: error: services failed to start: cannot serve HTTP on 192.0.2.1:8000 "
        "(WEB_SERVER_ADDRESS): Cannot assign requested address; 192.0.2.1 is not an address of "
        "this machine: set WEB_SERVER_ADDRESS to another address (e.g. '192.0.2.1:8001'; port 0 "
        "picks a free one)")
