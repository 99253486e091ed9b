"""Options several commands share: where the config comes from, and addresses.

Imports stay light here (see :mod:`nameko_like.cli`): only the YAML config
loader, which needs neither sockets nor eventlet.
"""

from __future__ import annotations

import argparse
from typing import Any

from nameko_like.config_loader import apply_overrides, load_config
from nameko_like.constants import AMQP_URI_CONFIG_KEY

#: Where a backdoor binds, and a backdoor client connects, when no host is given.
DEFAULT_BACKDOOR_HOST = "127.0.0.1"


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--config``, ``--broker`` and ``--define`` to ``parser``."""
    group = parser.add_argument_group("configuration")
    group.add_argument(
        "--config", metavar="FILE", action="append", default=[],
        help="YAML config file; repeat to merge several, later files winning",
    )
    group.add_argument(
        "--broker", metavar="URI",
        help="AMQP broker URI, overriding the config's AMQP_URI "
             "(memory:// runs everything embedded in this one process)",
    )
    group.add_argument(
        "--define", metavar="KEY=VALUE", action="append", default=[],
        help="set one config value, applied last; dots reach into nested "
             "keys (WEB.PORT=9000); VALUE is typed as YAML; repeatable",
    )


def load_cli_config(args: argparse.Namespace) -> dict[str, Any]:
    """The config the options of :func:`add_config_options` describe.

    Files merge in order, then ``--broker`` sets ``AMQP_URI``, then each
    ``--define`` applies, so the most specific option wins.

    Raises:
        ConfigurationError: naming the file and key at fault.
    """
    files = config_files(args)
    config: dict[str, Any] = load_config(files) if files else {}
    broker = getattr(args, "broker", None)
    if broker:
        config[AMQP_URI_CONFIG_KEY] = broker
    return apply_overrides(config, list(getattr(args, "define", None) or []))


def config_files(args: argparse.Namespace) -> list[str]:
    """The ``--config`` files of ``args``, in order.

    Our parser collects a list; a namespace built as Nameko's parser builds
    it has one path, or ``''`` for none.
    """
    files = getattr(args, "config", None) or []
    return [files] if isinstance(files, str) else list(files)


def parse_backdoor_port(text: str) -> int | tuple[str, int]:
    """``--backdoor-port`` for argparse: a bare PORT stays an int, as in Nameko.

    ``HOST:PORT`` gives ``(host, port)``; :func:`backdoor_address` turns
    either form into an address.
    """
    address = parse_address(text)
    return address[1] if ":" not in text else address


def backdoor_address(value: int | tuple[str, int] | None) -> tuple[str, int] | None:
    """The ``(host, port)`` a ``--backdoor-port`` value means (None: no backdoor)."""
    if value is None or isinstance(value, tuple):
        return value
    return DEFAULT_BACKDOOR_HOST, int(value)


def parse_address(text: str) -> tuple[str, int]:
    """Parse ``[HOST:]PORT`` (IPv6 hosts in brackets) for argparse's ``type=``.

    A missing host means :data:`DEFAULT_BACKDOOR_HOST`, so nothing is
    exposed beyond this machine unless asked for.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host = DEFAULT_BACKDOOR_HOST
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise argparse.ArgumentTypeError(f"{text!r}: the host before ':' is empty")
    try:
        port = int(port_text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected [HOST:]PORT with a numeric PORT") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: PORT must be between 0 and 65535")
    return host, port
