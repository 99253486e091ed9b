"""``nameko_like backdoor``: talk to the Python prompt of a running service."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from nameko_like.cli.options import parse_address

if TYPE_CHECKING:
    import socket

NAME = "backdoor"
HELP = "connect to a running service's backdoor"
DESCRIPTION = """\
Connect to the eventlet backdoor that `nameko_like run --backdoor-port` serves:
a Python prompt inside the running process, where `runner` is its
ServiceRunner. What you type is sent as is and the prompt's output is printed;
stdin may be a pipe, which makes the backdoor scriptable. End with Ctrl-D
(calling exit() there would stop the services, so it is refused).

Anything typed runs inside the services' process: a blocking call blocks them.
"""
EPILOG = """\
examples:
  nameko_like run myapp.services --backdoor-port 3000 &
  nameko_like backdoor 3000
  nameko_like backdoor 10.0.0.5:3000
  echo 'runner.service_names' | nameko_like backdoor 3000
"""
MONKEY_PATCH = False
PASS_THROUGH = False

#: Seconds to wait for the backdoor to accept the connection.
CONNECT_TIMEOUT = 5


def init_parser(parser: argparse.ArgumentParser) -> None:
    """Add backdoor's arguments."""
    parser.add_argument("address", metavar="[HOST:]PORT", type=parse_address,
                        help="where the backdoor listens (host defaults to 127.0.0.1)")


def _send_input(sock: socket.socket, stdin_fd: int) -> None:
    """Copy stdin to the socket; at its end, tell the backdoor no more is coming."""
    import os
    import socket

    try:
        while True:
            chunk = os.read(stdin_fd, 4096)
            if not chunk:
                break
            sock.sendall(chunk)
        # The backdoor's console ends on end-of-input and then closes the
        # connection, which ends the output loop in the main thread.
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the backdoor went away; the output loop sees that too


def main(args: argparse.Namespace) -> int:
    """Relay stdin to the backdoor and its output to stdout until either ends."""
    import socket
    import sys
    import threading

    from nameko_like.exceptions import CommandError

    host, port = args.address
    try:
        sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    except OSError as exc:
        raise CommandError(
            f"cannot connect to a backdoor at {host}:{port} ({exc.strerror or exc}); "
            f"is a service running with --backdoor-port {port}?") from None
    sock.settimeout(None)
    # A daemon thread: when the backdoor closes first, we must not wait for
    # the user to type something before exiting.
    threading.Thread(target=_send_input, args=(sock, sys.stdin.fileno()), daemon=True).start()
    out = sys.stdout.buffer
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                break
            out.write(data)
            out.flush()
    finally:
        sock.close()
    return 0
